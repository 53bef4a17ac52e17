"""The batch export in real task runs: deferred end to end, and killed then retried.

Each test runs Airflow's own test runners in a child process (see ``dag_runs``): on Airflow 3
``dag.test()`` runs the trigger inline in the same process as the task, and so does Airflow
2.11's ``dag.test()`` when no triggerer is running.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_centralmon._batch_resume import JOB_MARKER_NAME
from airflow_provider_centralmon.simulator.handle import SimulatorHandle

from .dag_runs import AIRFLOW_2, DagFolder, airflow_home, kill_when
from .support import BATCH_URLS, calls, leaked, past_window, record_secrets, truth

pytestmark = pytest.mark.slow

DAG_HEADER = """
    import json
    import os
    from datetime import datetime, timezone

    try:
        from airflow.sdk import DAG
    except ImportError:
        from airflow import DAG

    from airflow_provider_centralmon.operators.batch import CentralMonitoringBatchExportOperator
    from airflow_provider_centralmon.sensors.batch import CentralMonitoringBatchSensor

    params = json.loads(os.environ["CM_PARAMS"])
    start_date = datetime(2026, 1, 1, tzinfo=timezone.utc)
"""

DEFERRED_DAG = (
    DAG_HEADER
    + """
    with DAG("batch_deferred", schedule=None, start_date=start_date, catchup=False) as dag:
        export = CentralMonitoringBatchExportOperator(
            task_id="export",
            application="atr",
            start=params["start"],
            end=params["end"],
            output_path=params["output"],
            deferrable=True,
            poll_interval=0.05,
            batch_timeout=120,
        )
        wait = CentralMonitoringBatchSensor(
            task_id="wait",
            batch_ref="{{ ti.xcom_pull(task_ids='export', key='batch_ref') }}",
            deferrable=True,
            poke_interval=0.05,
            timeout=60,
        )
        export >> wait
"""
)

KILLED_DAG = (
    DAG_HEADER
    + """
    with DAG("batch_killed", schedule=None, start_date=start_date, catchup=False) as dag:
        CentralMonitoringBatchExportOperator(
            task_id="export",
            application="atr",
            start=params["start"],
            end=params["end"],
            output_path=params["output"],
            deferrable=False,
            poll_interval=0.1,
            batch_timeout=600,
        )
"""
)


def dag_folder(
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    sim: SimulatorHandle,
    dag_id: str,
    source: str,
) -> tuple[DagFolder, tuple[Any, Any], Path]:
    window = past_window(sim, 30)
    output = tmp_path / "out"
    params = {
        "start": window[0].isoformat(),
        "end": window[1].isoformat(),
        "output": f"file://{output}",
    }
    folder = DagFolder(
        home=airflow_home(tmp_path_factory),
        folder=tmp_path,
        dag_id=dag_id,
        source=source,
        env={
            "AIRFLOW_CONN_CENTRALMON_DEFAULT": sim.connection_json(),
            "CM_PARAMS": json.dumps(params),
        },
    )
    return folder, window, output


def exported(output: Path) -> list[Any]:
    """Return the records of the one export under ``output``, in order."""
    [manifest_path] = output.rglob("_manifest.json")
    manifest = json.loads(manifest_path.read_text())
    records = []
    for part in manifest["parts"]:
        with gzip.open(manifest_path.parent / part["name"], "rt", encoding="utf-8") as lines:
            records.extend(json.loads(line) for line in lines)
    return records


def test_the_deferred_export_runs_end_to_end_with_the_trigger_inline(
    centralmon_simulator_factory: Callable[..., SimulatorHandle],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    sim = centralmon_simulator_factory(
        applications=("atr",),
        span=timedelta(hours=2),
        batch_pending_polls=2,
        batch_records_per_file=100,
    )
    secrets = record_secrets(sim, monkeypatch)
    folder, window, output = dag_folder(
        tmp_path, tmp_path_factory, sim, "batch_deferred", DEFERRED_DAG
    )

    run = folder.dag_test()

    assert run.states == {"export": "success", "wait": "success"}, run.output[-5000:]
    assert "[DAG TEST] running trigger in line" in run.output
    assert "Batch export ready after 3 polls" in run.output
    assert exported(output) == truth(sim, *window)
    assert sim.counters()["batch_submissions"] == 1
    assert len(secrets) >= 5
    files = [path.read_bytes().decode("utf-8", "replace") for path in output.rglob("*.json")]
    assert leaked(secrets, run.output, folder.stored_text(), *files) == []


def test_a_task_killed_after_the_submit_reconnects_on_its_retry(
    centralmon_simulator_factory: Callable[..., SimulatorHandle],
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    sim = centralmon_simulator_factory(
        applications=("atr",),
        span=timedelta(hours=2),
        batch_ready_delay_s=3600,
        batch_records_per_file=100,
    )
    folder, window, output = dag_folder(tmp_path, tmp_path_factory, sim, "batch_killed", KILLED_DAG)

    # The first try submits, keeps the reference (before its first status check) and waits;
    # it is killed while waiting, as a lost worker would be.
    first = kill_when(folder.start_dag_test(), lambda: calls(sim, BATCH_URLS) >= 1)
    # Airflow 3.3 keeps the reference in its task state store, older versions in a marker.
    markers = list(output.rglob(JOB_MARKER_NAME))
    sim.clock.advance(3601)
    retry = folder.task_test("export")

    assert "Batch export accepted" in first
    assert len(markers) == (1 if AIRFLOW_2 else 0)
    assert "by an earlier try" in retry.output, retry.output[-5000:]
    assert sim.counters()["batch_submissions"] == 1
    assert exported(output) == truth(sim, *window)
    assert not list(output.rglob(JOB_MARKER_NAME))
