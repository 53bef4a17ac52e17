"""Run the example DAGs with ``airflow dags test`` in one migrated Airflow home per session."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_centralmon.simulator.handle import SimulatorHandle

EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"
AIRFLOW = Path(sys.executable).parent / "airflow"
CLI_TIMEOUT_S = 240
OUTPUT_TAIL_CHARS = 4000


@dataclass(frozen=True)
class DagRunner:
    """Runs example DAGs in a migrated Airflow home and reads what the runs left behind.

    :param home: the Airflow home; its SQLite database is shared by every run of the session
    """

    home: Path

    @property
    def database(self) -> Path:
        return self.home / "airflow.db"

    def environment(self, **extra: str) -> dict[str, str]:
        """Return the environment of an Airflow command: this home, the example DAGs."""
        return {
            **os.environ,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(EXAMPLE_DAGS),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.database}",
            **extra,
        }

    def airflow(self, *arguments: str, **extra_env: str) -> None:
        """Run an ``airflow`` command; fail the test with its output if it fails."""
        completed = subprocess.run(
            [str(AIRFLOW), *arguments],
            env=self.environment(**extra_env),
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_S,
            check=False,
        )
        output = (completed.stdout + completed.stderr)[-OUTPUT_TAIL_CHARS:]
        assert completed.returncode == 0, f"airflow {' '.join(arguments)} failed:\n{output}"

    def dags_test(
        self,
        dag_id: str,
        logical_date: datetime,
        simulator: SimulatorHandle,
        export_path: Path | None = None,
    ) -> None:
        """Run one DAG against ``simulator``; fail unless the run succeeded.

        :param export_path: local folder set as the Variable ``centralmon_export_path``
        """
        extra = {"AIRFLOW_CONN_CENTRALMON_DEFAULT": simulator.connection_json()}
        if export_path is not None:
            extra["AIRFLOW_VAR_CENTRALMON_EXPORT_PATH"] = export_path.as_uri()
        self.airflow("dags", "test", dag_id, logical_date.isoformat(), **extra)
        # The exit status is checked above; the run's state is the version-independent proof.
        assert self.latest_run_state(dag_id) == "success"

    def latest_run_state(self, dag_id: str) -> str:
        """Return the state of the DAG's latest run in the metadata database."""
        with sqlite3.connect(self.database) as connection:
            row = connection.execute(
                "select state from dag_run where dag_id = ? order by id desc limit 1", (dag_id,)
            ).fetchone()
        assert row is not None, f"no run of {dag_id} in {self.database}"
        return str(row[0])

    def return_value(self, dag_id: str, task_id: str, map_index: int = -1) -> Any:
        """Return the latest ``return_value`` XCom of a task, decoded from its JSON.

        Airflow 2.11 and 3 both store XCom values as JSON (text or bytes) in SQLite.
        """
        with sqlite3.connect(self.database) as connection:
            row = connection.execute(
                "select value from xcom where dag_id = ? and task_id = ? and map_index = ? "
                "and key = 'return_value' order by timestamp desc limit 1",
                (dag_id, task_id, map_index),
            ).fetchone()
        assert row is not None, f"{dag_id}.{task_id}[{map_index}] returned nothing"
        return json.loads(row[0])


@pytest.fixture(scope="session")
def dag_runner(tmp_path_factory: pytest.TempPathFactory) -> DagRunner:
    """Return a runner whose Airflow home is migrated once for the whole session."""
    runner = DagRunner(home=tmp_path_factory.mktemp("example-dags-airflow-home"))
    runner.airflow("db", "migrate")
    return runner
