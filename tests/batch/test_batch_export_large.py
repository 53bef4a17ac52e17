"""A batch export of more than 300,000 records, in several files, equals the simulator's truth.

The export runs once for the module; each test checks one property of it. Records are
compared as bytes, streamed, so the comparison holds no more than one line of each side.
"""

from __future__ import annotations

import gzip
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from airflow_provider_centralmon import _log_search
from airflow_provider_centralmon.operators.batch import CentralMonitoringBatchExportOperator
from airflow_provider_centralmon.simulator.clock import ManualClock
from airflow_provider_centralmon.simulator.dataset import RecordFilter, to_epoch_ms
from airflow_provider_centralmon.simulator.handle import SimulatorHandle
from airflow_provider_centralmon.simulator.settings import SimulatorSettings

from .support import (
    FILES,
    FakeTaskInstance,
    calls,
    export_directory,
    make_context,
    past_window,
    reset_process_state,
)

pytestmark = pytest.mark.slow

MIN_RECORDS = 300_000
FILE_RECORDS = 100_000


@dataclass(frozen=True)
class LargeExport:
    sim: SimulatorHandle
    window: tuple[datetime, datetime]
    result: dict[str, Any]
    ti: FakeTaskInstance


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LargeExport]:
    """Export 4 h 40 min of a simulator holding 400,000 records over 6 hours (files of 100k)."""
    clock = ManualClock(start=datetime.now(UTC).replace(second=0, microsecond=0))
    settings = SimulatorSettings(
        applications=("atr",), span=timedelta(hours=6), total_records=400_000
    )
    sim = SimulatorHandle(settings=settings, clock=clock)
    output = tmp_path_factory.mktemp("large")
    reset_process_state()
    try:
        with pytest.MonkeyPatch.context() as patch:
            sim.use_as_connection(patch)
            patch.setattr(_log_search, "utc_now", sim.now)
            window = past_window(sim, 280)
            ti = FakeTaskInstance()
            task = CentralMonitoringBatchExportOperator(
                task_id="export",
                application="atr",
                start=window[0],
                end=window[1],
                output_path=f"file://{output}",
                deferrable=False,
                download_concurrency=4,
                poll_interval=0.01,
            )
            result = task.execute(make_context(ti))
        yield LargeExport(sim=sim, window=window, result=result, ti=ti)
    finally:
        sim.stop()
        reset_process_state()


def exported_lines(result: dict[str, Any]) -> Iterator[bytes]:
    directory = export_directory(result)
    for part in result["parts"]:
        with gzip.open(directory / part["name"], "rb") as stream:
            for line in stream:
                yield line.rstrip(b"\n")


def truth_lines(large: LargeExport) -> Iterator[bytes]:
    start, end = large.window
    records = large.sim.state.dataset.select(
        RecordFilter("atr", ()), to_epoch_ms(start), to_epoch_ms(end)
    )
    # The export's order: time, then id.
    for record in sorted(records, key=lambda record: (record.ts_ms, record.record_id)):
        yield record.source_bytes()


def test_the_export_holds_exactly_the_records_of_the_window_in_order(large: LargeExport) -> None:
    compared = 0
    for exported, expected in itertools.zip_longest(
        exported_lines(large.result), truth_lines(large)
    ):
        assert exported == expected, f"record {compared} differs"
        compared += 1

    assert compared == large.result["counts"]["records"] >= MIN_RECORDS


def test_the_records_came_from_several_files_downloaded_in_parallel(large: LargeExport) -> None:
    batch = large.result["run"]["batch"]
    [job] = large.sim.state.batches._by_token.values()

    assert len(job.files) == batch["files"] >= 4
    assert [len(file) for file in job.files[:-1]] == [FILE_RECORDS] * (len(job.files) - 1)
    assert batch["records_downloaded"] == sum(len(file) for file in job.files)
    assert batch["file_downloads"] == len(job.files) == calls(large.sim, FILES)
    assert large.sim.counters()["batch_submissions"] == 1


def test_records_outside_the_window_were_trimmed_and_counted(large: LargeExport) -> None:
    counts = large.result["run"]["export"]["window_filter"]
    downloaded = large.result["run"]["batch"]["records_downloaded"]
    records = large.result["counts"]["records"]

    assert counts["in_window"] == records
    assert counts["before_window"] > 0
    assert counts["after_window"] > 0
    assert records + counts["trimmed"] == downloaded
    assert sum(part["records"] for part in large.result["parts"]) == records


def test_the_batch_reference_was_pushed_sealed(large: LargeExport) -> None:
    [token] = large.sim.state.batches._by_token

    assert large.ti.xcom["batch_ref"].startswith("cmseal1:")
    assert token not in large.ti.xcom["batch_ref"]
