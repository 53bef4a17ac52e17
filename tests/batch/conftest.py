"""Fixtures of these tests: a fresh process state for each, and log capture."""

from __future__ import annotations

from batch.export_fixtures import make_task, module_sim, sim, window  # noqa: F401

# Imported so that pytest registers them here.
from batch.fixtures import _fresh_process_state, logs  # noqa: F401
