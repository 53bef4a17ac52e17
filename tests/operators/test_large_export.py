"""The storage operator on 216,000 records: exact export, byte-identical re-run, killed runs.

One simulator holds the dataset for the whole module: two hours of ATR logs, 1,800 records a
minute. The window is everything but the last four minutes, about 208,800 records; the
scroll also brings the records after the window, which the operator trims. Parts are not
compressed here, to keep the module fast; gzip is covered on a smaller window elsewhere.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from operator_support import attach, export_dir, make_context, read_lines, read_tree

from airflow_provider_centralmon.operators.logs import CentralMonitoringLogsToStorageOperator
from airflow_provider_centralmon.simulator.clock import ManualClock
from airflow_provider_centralmon.simulator.dataset import RecordFilter, to_epoch_ms
from airflow_provider_centralmon.simulator.handle import SimulatorHandle
from airflow_provider_centralmon.simulator.settings import SimulatorSettings

pytestmark = pytest.mark.slow

TOTAL_RECORDS = 216_000
SPAN = timedelta(hours=2)
MAX_PART_RECORDS = 60_000
SUPPORT_DIR = Path(__file__).parent


@pytest.fixture(scope="module")
def big_sim() -> Iterator[SimulatorHandle]:
    clock = ManualClock(start=datetime.now(UTC).replace(second=0, microsecond=0))
    settings = SimulatorSettings(total_records=TOTAL_RECORDS, span=SPAN, applications=("atr",))
    with SimulatorHandle(settings=settings, clock=clock) as handle:
        yield handle


@pytest.fixture
def sim(big_sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch) -> SimulatorHandle:
    big_sim.reset()
    return attach(big_sim, monkeypatch)


def the_window(sim: SimulatorHandle) -> tuple[datetime, datetime]:
    end = sim.now() - timedelta(minutes=4)
    return sim.now() - SPAN, end


def storage_operator(output: Path, start: datetime, end: datetime, **kwargs: Any) -> Any:
    return CentralMonitoringLogsToStorageOperator(
        task_id="export",
        application="atr",
        start=start,
        end=end,
        output_path=f"file://{output}",
        page_size=10_000,
        max_part_records=MAX_PART_RECORDS,
        compression="none",
        **kwargs,
    )


def expected_lines(sim: SimulatorHandle, start: datetime, end: datetime) -> list[bytes]:
    """The simulator's own records of the window, encoded, in (time, id) order."""
    records = sim.state.dataset.select(
        RecordFilter("atr", ()), to_epoch_ms(start), to_epoch_ms(end)
    )
    records.sort(key=lambda record: (record.ts_ms, record.record_id))
    return [record.source_bytes() for record in records]


def test_the_export_is_exactly_the_window_and_a_rerun_is_byte_identical(
    sim: SimulatorHandle, tmp_path: Path
) -> None:
    start, end = the_window(sim)
    output = tmp_path / "out"

    first = storage_operator(output, start, end).execute(make_context())

    directory = export_dir(first)
    expected = expected_lines(sim, start, end)
    assert len(expected) >= 200_000
    assert first["counts"]["records"] == len(expected)
    assert first["run"]["export"]["window_filter"]["after_window"] > 0
    assert list(read_lines(directory, first)) == expected
    assert [part["records"] for part in first["parts"]][:-1] == [MAX_PART_RECORDS] * (
        len(first["parts"]) - 1
    )
    files = read_tree(output)
    assert json.loads(files[str(directory.relative_to(output) / "_manifest.json")]) == {
        key: value for key, value in first.items() if key not in ("path", "run")
    }

    sim.clock.advance(120)  # a later re-run: new request, new relative lower bound
    second = storage_operator(output, start, end).execute(make_context())

    rerun_files = read_tree(output)
    assert second["path"] == first["path"]
    assert second["run"]["search"]["time_range"] != first["run"]["search"]["time_range"]
    assert {name for name in files if not name.endswith("_run.json")} == {
        name for name in rerun_files if not name.endswith("_run.json")
    }
    for name, content in files.items():
        if not name.endswith("_run.json"):
            assert rerun_files[name] == content, name


KILLED_EXPORT = textwrap.dedent(
    """
    import json, os, signal, sys
    from datetime import datetime
    sys.path.insert(0, sys.argv[1])
    from airflow_provider_centralmon._output import ExportWriter
    from airflow_provider_centralmon.operators.logs import (
        CentralMonitoringLogsToStorageOperator as Operator,
    )
    from operator_support import make_context

    output, start, end, where = sys.argv[2:6]

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    if where == "scroll":
        add_page = ExportWriter.add_page

        def add_page_then_die(self):
            add_page(self)
            if self.progress.pages == 5:
                die()

        ExportWriter.add_page = add_page_then_die
    else:
        log_progress = Operator.log_export_progress

        def log_then_die(self, snapshot):
            log_progress(self, snapshot)
            if snapshot.phase.value == "writing" and snapshot.parts_written >= 2:
                die()

        Operator.log_export_progress = log_then_die

    Operator(
        task_id="export", application="atr", output_path="file://" + output,
        start=datetime.fromisoformat(start), end=datetime.fromisoformat(end),
        page_size=10_000, max_part_records=int(sys.argv[6]), compression="none",
        progress_interval=0.001,
    ).execute(make_context())
    """
)


def run_killed_export(
    sim: SimulatorHandle, output: Path, start: datetime, end: datetime, where: str
) -> None:
    env = {**os.environ, "AIRFLOW_CONN_CENTRALMON_DEFAULT": sim.connection_json()}
    arguments = [str(SUPPORT_DIR), str(output), start.isoformat(), end.isoformat(), where]
    arguments.append(str(MAX_PART_RECORDS))
    completed = subprocess.run(
        [sys.executable, "-c", KILLED_EXPORT, *arguments],
        env=env,
        capture_output=True,
        timeout=240,
        check=False,
    )
    assert completed.returncode == -signal.SIGKILL, completed.stderr.decode()[-3000:]


def looks_complete(output: Path) -> list[str]:
    """Files a reader could take for (part of) a finished export."""
    return sorted(
        str(path.relative_to(output))
        for path in output.rglob("*")
        if path.is_file()
        and "_staging-" not in str(path)
        and (path.name.startswith("part-") or path.name.startswith("_"))
    )


def test_runs_killed_mid_export_leave_nothing_complete_looking(
    sim: SimulatorHandle, tmp_path: Path
) -> None:
    start, end = the_window(sim)
    output = tmp_path / "out"

    run_killed_export(sim, output, start, end, "scroll")

    assert looks_complete(output) == []

    run_killed_export(sim, output, start, end, "writing")

    assert looks_complete(output) == []
    assert list(output.rglob("_staging-*/part-*")), "the kill came before any part was staged"

    result = storage_operator(output, start, end).execute(make_context())

    directory = export_dir(result)
    assert not list(output.rglob("_staging-*"))
    assert result["counts"]["records"] == len(expected_lines(sim, start, end))
    assert sorted(path.name for path in directory.iterdir()) == sorted(
        [part["name"] for part in result["parts"]] + ["_manifest.json", "_run.json"]
    )
