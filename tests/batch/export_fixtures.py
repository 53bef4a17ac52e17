"""Fixtures of the batch export tests: a simulator cutting exports into small files."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from airflow_provider_centralmon.operators.batch import CentralMonitoringBatchExportOperator
from airflow_provider_centralmon.simulator.clock import ManualClock
from airflow_provider_centralmon.simulator.handle import SimulatorHandle
from airflow_provider_centralmon.simulator.settings import SimulatorSettings
from batch.support import attach, past_window

FILE_RECORDS = 150
URL_LIFETIME_S = 600


@pytest.fixture(scope="module")
def module_sim() -> Iterator[SimulatorHandle]:
    """A simulator cutting exports into files of 150 records, so small windows span several."""
    clock = ManualClock(start=datetime.now(UTC).replace(second=0, microsecond=0))
    settings = SimulatorSettings(
        applications=("atr",),
        span=timedelta(hours=4),
        batch_records_per_file=FILE_RECORDS,
        presigned_url_lifetime_s=URL_LIFETIME_S,
    )
    handle = SimulatorHandle(settings=settings, clock=clock)
    yield handle
    handle.stop()


@pytest.fixture
def sim(module_sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch) -> SimulatorHandle:
    module_sim.reset()
    return attach(module_sim, monkeypatch)


@pytest.fixture
def window(sim: SimulatorHandle) -> tuple[datetime, datetime]:
    """The last 40 minutes before the simulator's now, less 5: about 400 records."""
    return past_window(sim, 40)


@pytest.fixture
def make_task(window: tuple[datetime, datetime], tmp_path: Any) -> Callable[..., Any]:
    """Build an operator exporting ``window`` under tmp_path, polling in the worker."""
    start, end = window

    def make(**kwargs: Any) -> CentralMonitoringBatchExportOperator:
        options = {
            "task_id": "export",
            "application": "atr",
            "start": start,
            "end": end,
            "output_path": f"file://{tmp_path}/out",
            "poll_interval": 0.01,
            "deferrable": False,
            **kwargs,
        }
        return CentralMonitoringBatchExportOperator(**options)

    return make
