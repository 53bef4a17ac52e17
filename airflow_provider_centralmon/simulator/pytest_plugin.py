"""pytest fixtures that run the Central Monitoring simulator for your own DAG tests.

Installed with the provider and registered as a pytest plugin, so the fixtures are available
in any test suite of an environment that has the provider::

    def test_export(centralmon_simulator, monkeypatch):
        centralmon_simulator.use_as_connection(monkeypatch)  # sets AIRFLOW_CONN_CENTRALMON_DEFAULT
        ...  # run the operator or the DAG under test
        assert centralmon_simulator.counters()["routes"]["/v2/logs/scroll"]["calls"] >= 1

    def test_with_faults(centralmon_simulator):
        centralmon_simulator.set_faults("/v1/logs/scroll=error,status=503,count=2")
        ...

    def test_custom(centralmon_simulator_factory):
        sim = centralmon_simulator_factory(batch_ready_delay_s=60, records_per_minute=100)
        sim.clock.advance(61)  # the factory's simulators run on a manual clock too

``centralmon_simulator`` is one server per test session, on a manual clock that stands still
at the session's start (floored to the minute) unless a test moves it; before each test its
counters, quotas, cursors, batches, faults and token revocations are reset and its clock is
put back.
``centralmon_simulator_factory(**settings)`` starts a separate simulator with any
:class:`~airflow_provider_centralmon.simulator.settings.SimulatorSettings` field (and an
optional ``clock=``), stopped when the test ends. The handle's ``expected_hits(body)``,
``expected_ids(body)``, ``hits_between(body, start, end)`` and
``records_between(start, end, application)`` give the exact records to compare with.

This module imports nothing heavy: the server is imported when a fixture is first used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from airflow_provider_centralmon.simulator.handle import SimulatorHandle


def _start(**options: Any) -> SimulatorHandle:
    from airflow_provider_centralmon.simulator.clock import ManualClock
    from airflow_provider_centralmon.simulator.handle import SimulatorHandle
    from airflow_provider_centralmon.simulator.settings import SimulatorSettings

    clock = options.pop("clock", None)
    if clock is None:
        clock = ManualClock(start=datetime.now(UTC).replace(second=0, microsecond=0))
    return SimulatorHandle(settings=SimulatorSettings(**options), clock=clock)


@pytest.fixture(scope="session")
def centralmon_simulator_session() -> Iterator[SimulatorHandle]:
    """One simulator with default settings for the whole session (not reset between tests)."""
    handle = _start()
    yield handle
    handle.stop()


@pytest.fixture
def centralmon_simulator(
    centralmon_simulator_session: SimulatorHandle,
) -> SimulatorHandle:
    """Return the session's simulator, reset for one test.

    Counters, quotas, cursors, batches, faults and token revocations are reset, and the
    manual clock is put back at the session start.
    """
    centralmon_simulator_session.reset()
    return centralmon_simulator_session


@pytest.fixture
def centralmon_simulator_factory() -> Iterator[Callable[..., SimulatorHandle]]:
    """Start simulators with custom settings; each is stopped when the test ends."""
    started: list[SimulatorHandle] = []

    def start(**options: Any) -> SimulatorHandle:
        handle = _start(**options)
        started.append(handle)
        return handle

    yield start
    for handle in started:
        handle.stop()
