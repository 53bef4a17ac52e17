"""The operators in a real Airflow run: templating, XCom between tasks, the asset event.

``airflow dags test`` runs a DAG file in a fresh Airflow home (its own SQLite database) in a
child process, against the session's simulator over loopback HTTP. A last task pulls the
other tasks' XCom values and writes them to a file the test reads.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_centralmon.simulator.handle import SimulatorHandle

pytestmark = pytest.mark.slow

AIRFLOW = Path(sys.executable).with_name("airflow")

DAG_FILE = textwrap.dedent(
    """
    import json
    import os
    from datetime import datetime

    try:
        from airflow.sdk import DAG
    except ImportError:
        from airflow import DAG
    try:
        from airflow.providers.standard.operators.python import PythonOperator
    except ImportError:
        from airflow.operators.python import PythonOperator

    from airflow_provider_centralmon.operators.logs import (
        CentralMonitoringLogsOperator,
        CentralMonitoringLogsToStorageOperator,
    )
    from airflow_provider_centralmon.operators.query import CentralMonitoringQueryOperator

    OUT = os.environ["CENTRALMON_TEST_OUT"]


    def collect(ti, **_):
        names = ("export", "asset", "logs", "query")
        pulled = {name: ti.xcom_pull(task_ids=name) for name in names}
        with open(os.path.join(OUT, "results.json"), "w") as stream:
            json.dump(pulled, stream)


    with DAG(
        "centralmon_operators_test",
        schedule=None,
        start_date=datetime(2026, 1, 1),
        params={"app": "atr", "start": %(start)r, "end": %(end)r, "domain": "acme-prod"},
    ):
        window = {"start": "{{ params.start }}", "end": "{{ params.end }}"}
        export = CentralMonitoringLogsToStorageOperator(
            task_id="export",
            application="{{ params.app }}",
            output_path="file://" + OUT + "/templated/{{ ds }}",
            layout="exact",
            max_part_records=100,
            **window,
        )
        asset = CentralMonitoringLogsToStorageOperator(
            task_id="asset", application="atr", output_path="file://" + OUT + "/assets", **window
        )
        logs = CentralMonitoringLogsOperator(
            task_id="logs", application="{{ params.app }}", domain="{{ params.domain }}", **window
        )
        query = CentralMonitoringQueryOperator(
            task_id="query", domain_name="{{ params.domain }}", time_range="now-1h"
        )
        [export, asset, logs, query] >> PythonOperator(task_id="collect", python_callable=collect)
    """
)


def airflow(home: Path, env: dict[str, str], *arguments: str) -> None:
    completed = subprocess.run(
        [str(AIRFLOW), *arguments],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert completed.returncode == 0, (completed.stdout + completed.stderr)[-4000:]


def asset_event_extras(database: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(database) as connection:
        tables = {row[0] for row in connection.execute("select name from sqlite_master")}
        table = "asset_event" if "asset_event" in tables else "dataset_event"
        rows = connection.execute(f"select extra from {table}").fetchall()
    return [json.loads(row[0]) for row in rows]


def test_a_dag_run_renders_templates_and_passes_xcom(
    centralmon_simulator: SimulatorHandle, tmp_path: Path
) -> None:
    sim = centralmon_simulator
    home, dags, out = tmp_path / "home", tmp_path / "dags", tmp_path / "out"
    for directory in (home, dags, out):
        directory.mkdir()
    end = sim.now() - timedelta(minutes=10)
    start = end - timedelta(minutes=30)
    (dags / "centralmon_operators_test.py").write_text(
        DAG_FILE % {"start": start.isoformat(), "end": end.isoformat()}
    )
    database = home / "airflow.db"
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{database}",
        "AIRFLOW_CONN_CENTRALMON_DEFAULT": sim.connection_json(),
        "CENTRALMON_TEST_OUT": str(out),
    }

    airflow(home, env, "db", "migrate")
    # Records the DAG and its asset in the database: Airflow 2.11 keeps an asset event only
    # for an asset it knows.
    airflow(home, env, "dags", "reserialize")
    airflow(home, env, "dags", "test", "centralmon_operators_test", "2026-12-01")

    results = json.loads((out / "results.json").read_text())
    expected = sim.records_between(start, end, "atr")
    export = results["export"]
    assert export["path"] == f"file://{out}/templated/2026-12-01"
    assert export["counts"]["records"] == len(expected) > 200
    assert len(export["parts"]) == -(-len(expected) // 100)
    assert (out / "templated" / "2026-12-01" / "_manifest.json").is_file()
    assert results["asset"]["counts"]["records"] == len(expected)
    assert results["logs"] == [
        hit["_source"] for hit in sim.records_between(start, end, "atr", domain="acme-prod")
    ]
    assert results["query"]["ticket_count"] > 0
    (event,) = asset_event_extras(database)
    assert event["path"] == results["asset"]["path"]
    assert event["records"] == len(expected)
