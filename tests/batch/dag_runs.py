"""Run DAGs and tasks with Airflow's own test runners, in separate processes.

``dag.test()`` runs every task, and every trigger inline, in one process; ``airflow tasks
test`` runs one task of an existing DAG run. Each runs in a child process with its own
``AIRFLOW_HOME`` (migrated once per test session), so that it can be killed, and so that its
metadata database can be searched for secrets afterwards. The simulator stays in the test
process; the child reaches it over loopback.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import airflow
import pytest

AIRFLOW_2 = airflow.__version__.startswith("2.")
LOGICAL_DATE = "2026-01-05T00:00:00+00:00"
RUN_TIMEOUT_S = 300
_STATES_MARK = "CENTRALMON-STATES "

_DRIVER = textwrap.dedent(
    """
    import json, os, sys
    from datetime import datetime

    import airflow

    sys.path.insert(0, os.environ["CM_DAGS_FOLDER"])
    dag = __import__(os.environ["CM_DAG_MODULE"]).dag
    logical_date = datetime.fromisoformat(os.environ["CM_LOGICAL_DATE"])
    if airflow.__version__.startswith("2."):
        run = dag.test(execution_date=logical_date)
    else:
        run = dag.test(logical_date=logical_date, run_after=logical_date)

    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(TaskInstance).filter(
            TaskInstance.dag_id == dag.dag_id, TaskInstance.run_id == run.run_id
        )
        states = {row.task_id: None if row.state is None else str(row.state) for row in rows}
    print("CENTRALMON-STATES " + json.dumps(states), flush=True)
    """
)

_homes: dict[str, Path] = {}


@dataclass(frozen=True)
class Finished:
    """A finished child process: its exit code, its whole output and the task states.

    :param returncode: exit code
    :param output: standard output and error, interleaved
    :param states: task id to state, for ``dag.test()`` runs; empty otherwise
    """

    returncode: int
    output: str
    states: dict[str, str | None]


def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return an ``AIRFLOW_HOME`` with a migrated database, made once per test session."""
    home = _homes.get("home")
    if home is None:
        home = tmp_path_factory.mktemp("airflow-home")
        migrated = subprocess.run(
            [_airflow(), "db", "migrate"],
            env=_base_env(home, home),
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
            check=False,
        )
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        _homes["home"] = home
    return home


class DagFolder:
    """A DAG folder with one DAG file, and the runners of that DAG.

    :param home: the ``AIRFLOW_HOME`` of the runs
    :param folder: an empty directory for the DAG folder and the driver
    :param dag_id: the DAG's id, also the module's name
    :param source: the DAG file's source; it defines ``dag``
    :param env: further environment variables of the runs (connections, parameters)
    """

    def __init__(
        self, *, home: Path, folder: Path, dag_id: str, source: str, env: Mapping[str, str]
    ) -> None:
        self.home = home
        self.folder = folder / "dags"
        self.folder.mkdir()
        self.dag_id = dag_id
        (self.folder / f"{dag_id}.py").write_text(textwrap.dedent(source))
        # Outside the DAG folder, which Airflow parses: the driver must not run when parsed.
        self.driver = folder / "driver.py"
        self.driver.write_text(_DRIVER)
        self.env = {
            **_base_env(home, self.folder),
            "CM_DAGS_FOLDER": str(self.folder),
            "CM_DAG_MODULE": dag_id,
            "CM_LOGICAL_DATE": LOGICAL_DATE,
            **env,
        }

    def start_dag_test(self) -> subprocess.Popen[str]:
        """Start ``dag.test()`` of the DAG in its own process group."""
        return subprocess.Popen(
            [sys.executable, str(self.driver)],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    def dag_test(self) -> Finished:
        """Run ``dag.test()`` of the DAG to its end."""
        process = self.start_dag_test()
        output, _ = process.communicate(timeout=RUN_TIMEOUT_S)
        states: dict[str, str | None] = {}
        for line in output.splitlines():
            if line.startswith(_STATES_MARK):
                states = json.loads(line.removeprefix(_STATES_MARK))
        return Finished(process.returncode, output, states)

    def task_test(self, task_id: str) -> Finished:
        """Run ``airflow tasks test`` of one task in the DAG run of the logical date."""
        done = subprocess.run(
            [_airflow(), "tasks", "test", self.dag_id, task_id, LOGICAL_DATE],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=RUN_TIMEOUT_S,
            check=False,
        )
        return Finished(done.returncode, done.stdout, {})

    def stored_text(self) -> str:
        """Return everything under ``AIRFLOW_HOME`` (database, logs) as text, to search."""
        files = sorted(path for path in self.home.rglob("*") if path.is_file())
        return "\n".join(path.read_bytes().decode("utf-8", errors="replace") for path in files)


def kill_when(process: subprocess.Popen[str], ready: Callable[[], bool]) -> str:
    """Kill ``process`` and its children with SIGKILL once ``ready()``; return its output."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not ready():
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            raise AssertionError(f"the run ended before it could be killed:\n{output[-5000:]}")
        assert time.monotonic() < deadline, "the run never reached the point to kill it"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    output, _ = process.communicate(timeout=RUN_TIMEOUT_S)
    return output


def _base_env(home: Path, dags_folder: Path) -> dict[str, Any]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "PYTEST_"))
    }
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def _airflow() -> str:
    return str(Path(sys.executable).parent / "airflow")
