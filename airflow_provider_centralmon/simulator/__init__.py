"""An offline stand-in for the Central Monitoring API, for tests, demos and benchmarks.

It serves the token endpoint, the scroll, batch and query routes, presigned batch files,
and admin routes for faults and counters, from deterministic generated records. Start it
with the ``centralmon-simulator`` command, from pytest with the ``centralmon_simulator``
fixture, or in code with :class:`~airflow_provider_centralmon.simulator.handle.SimulatorHandle`.

Where the real service is undocumented, the simulator guesses; each guess is a setting of
:class:`~airflow_provider_centralmon.simulator.settings.SimulatorSettings` or is marked
"Limitation" where it lives. Nothing heavy is imported with this package.
"""

from __future__ import annotations
