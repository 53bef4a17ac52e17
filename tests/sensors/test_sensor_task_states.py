"""Both sensors in real task runs: success, timeout and an exhausted quota give the right state.

One ``dag.test()`` run (in a child process) holds every case as an independent task, poking
in the worker and deferred to a trigger that runs inline. Each case has its own simulator:

- ``cm_landing_1`` / ``cm_landing_2``: logs start at the simulator's now and every scroll
  moves its clock 10 minutes on, so the first look finds nothing and a later one finds logs;
- ``cm_pending``: batch exports answer "not ready" to their first 3 polls;
- ``cm_never``: batch exports are never ready;
- ``cm_exhausted``: the scroll and the batch urls routes answer 429 (daily quota used up);
  these tasks have a retry left, which an exhausted quota must not use.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from batch.dag_runs import DagFolder, airflow_home
from batch.support import BATCH_URLS, SCROLL, calls, leaked, record_secrets

from airflow_provider_centralmon.hooks.centralmon import CentralMonitoringHook
from airflow_provider_centralmon.simulator.clock import ManualClock
from airflow_provider_centralmon.simulator.handle import SimulatorHandle
from airflow_provider_centralmon.simulator.settings import SimulatorSettings

pytestmark = pytest.mark.slow

SENSOR_DAG = """
    import json
    import os
    from datetime import datetime, timedelta, timezone

    try:
        from airflow.sdk import DAG
    except ImportError:
        from airflow import DAG

    from airflow_provider_centralmon.sensors.batch import CentralMonitoringBatchSensor
    from airflow_provider_centralmon.sensors.logs import CentralMonitoringLogsSensor

    refs = json.loads(os.environ["CM_PARAMS"])
    start_date = datetime(2026, 1, 1, tzinfo=timezone.utc)
    fast = {"poke_interval": 0.1}
    brief = {"poke_interval": 0.2, "timeout": 1}
    # dag.test() runs a retry after its delay: a retried task would spend one more call.
    retry = {"retries": 1, "retry_delay": timedelta(seconds=1)}

    def logs(task_id, conn_id, min_records, **kwargs):
        return CentralMonitoringLogsSensor(
            task_id=task_id,
            application="atr",
            time_range="now-60m",
            min_records=min_records,
            centralmon_conn_id=conn_id,
            **kwargs,
        )

    def batch(task_id, conn_id, **kwargs):
        return CentralMonitoringBatchSensor(
            task_id=task_id, batch_ref=refs[task_id], centralmon_conn_id=conn_id, **kwargs
        )

    with DAG("sensor_states", schedule=None, start_date=start_date, catchup=False) as dag:
        logs("logs_poke_success", "cm_landing_1", 20, timeout=60, **fast)
        logs("logs_deferred_success", "cm_landing_2", 20, timeout=60, deferrable=True, **fast)
        logs("logs_poke_timeout", "cm_pending", 10**6, **brief)
        logs("logs_deferred_timeout", "cm_pending", 10**6, deferrable=True, **brief)
        logs("logs_soft_timeout", "cm_pending", 10**6, deferrable=True, soft_fail=True, **brief)
        logs("logs_quota", "cm_exhausted", 1, timeout=60, **fast, **retry)
        logs(
            "logs_deferred_quota", "cm_exhausted", 1, timeout=60, deferrable=True, **fast, **retry
        )
        logs("logs_soft_quota", "cm_exhausted", 1, timeout=60, soft_fail=True, **fast, **retry)
        batch("batch_poke_success", "cm_pending", timeout=60, **fast)
        batch("batch_deferred_success", "cm_pending", timeout=60, deferrable=True, **fast)
        batch("batch_poke_timeout", "cm_never", **brief)
        batch("batch_deferred_timeout", "cm_never", deferrable=True, **brief)
        batch("batch_quota", "cm_exhausted", timeout=60, **fast, **retry)
"""

EXPECTED_STATES = {
    "logs_poke_success": "success",
    "logs_deferred_success": "success",
    "logs_poke_timeout": "failed",
    "logs_deferred_timeout": "failed",
    "logs_soft_timeout": "skipped",
    "logs_quota": "failed",
    "logs_deferred_quota": "failed",
    "logs_soft_quota": "skipped",
    "batch_poke_success": "success",
    "batch_deferred_success": "success",
    "batch_poke_timeout": "failed",
    "batch_deferred_timeout": "failed",
    "batch_quota": "failed",
}


def start(clock: ManualClock | None = None, **settings: Any) -> SimulatorHandle:
    """Start a simulator of ``atr`` logs on a manual clock."""
    clock = clock or ManualClock(start=datetime.now(UTC).replace(second=0, microsecond=0))
    return SimulatorHandle(
        settings=SimulatorSettings(applications=("atr",), **settings), clock=clock
    )


def landing() -> SimulatorHandle:
    """A simulator whose logs begin at its now; each new scroll moves it 10 minutes on."""
    clock = ManualClock(start=datetime.now(UTC).replace(second=0, microsecond=0))
    sim = start(clock, span=timedelta(hours=1), dataset_end=clock.now() + timedelta(hours=1))
    cursors = sim.state.cursors
    open_cursor = cursors.open

    def open_then_move_on(*args: Any, **kwargs: Any) -> Any:
        page = open_cursor(*args, **kwargs)
        clock.advance(timedelta(minutes=10))
        return page

    cursors.open = open_then_move_on  # type: ignore[method-assign]
    return sim


def sealed_export(sim: SimulatorHandle, conn_id: str, monkeypatch: pytest.MonkeyPatch) -> str:
    sim.use_as_connection(monkeypatch, conn_id=conn_id)
    with CentralMonitoringHook(conn_id) as hook:
        token = hook.submit_batch({"application": "atr", "time_range": "now-30m"}).batch_token
        return hook.seal(token)


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Run the DAG once; return the run and the simulators."""
    sims = {
        "cm_landing_1": landing(),
        "cm_landing_2": landing(),
        "cm_pending": start(span=timedelta(hours=2), batch_pending_polls=3),
        "cm_never": start(span=timedelta(hours=2), batch_pending_polls=10**9),
        "cm_exhausted": start(span=timedelta(hours=2)),
    }
    sims["cm_exhausted"].set_faults(f"{SCROLL}=rate_limit", f"{BATCH_URLS}=rate_limit")
    try:
        with pytest.MonkeyPatch.context() as patch:
            # One list per simulator, each growing as the simulator hands out secrets.
            secrets = [record_secrets(sim, patch) for sim in sims.values()]
            refs = {
                "batch_poke_success": sealed_export(sims["cm_pending"], "cm_pending", patch),
                "batch_deferred_success": sealed_export(sims["cm_pending"], "cm_pending", patch),
                "batch_poke_timeout": sealed_export(sims["cm_never"], "cm_never", patch),
                "batch_deferred_timeout": sealed_export(sims["cm_never"], "cm_never", patch),
                "batch_quota": sealed_export(sims["cm_pending"], "cm_pending", patch),
            }
            env = {
                f"AIRFLOW_CONN_{conn_id.upper()}": sim.connection_json()
                for conn_id, sim in sims.items()
            }
            env["CM_PARAMS"] = json.dumps(refs)
            dag = DagFolder(
                home=airflow_home(tmp_path_factory),
                folder=tmp_path_factory.mktemp("sensor-dag"),
                dag_id="sensor_states",
                source=SENSOR_DAG,
                env=env,
            )
            yield SimpleNamespace(run=dag.dag_test(), sims=sims, dag=dag, secrets=secrets)
    finally:
        for sim in sims.values():
            sim.stop()


def test_every_case_ends_in_the_state_airflow_gives_it(outcome: Any) -> None:
    run = outcome.run

    assert run.states == EXPECTED_STATES, run.output[-8000:]


def test_the_deferred_cases_ran_their_triggers(outcome: Any) -> None:
    run = outcome.run

    # Five tasks deferred; each ran its trigger inline.
    assert run.output.count("[DAG TEST] running trigger in line") == 5
    assert "Batch export ready after" in run.output
    assert "Poll 1: " in run.output


def test_timeouts_are_sensor_timeouts_and_quota_errors_are_quota_errors(outcome: Any) -> None:
    run = outcome.run

    assert run.output.count("AirflowSensorTimeout") >= 4
    assert "QuotaExhaustedError" in run.output


def test_the_logs_sensors_waited_for_logs_to_land(outcome: Any) -> None:
    sims = outcome.sims

    for conn_id in ("cm_landing_1", "cm_landing_2"):
        assert calls(sims[conn_id], SCROLL) >= 2, conn_id


def test_the_batch_sensors_waited_for_the_files(outcome: Any) -> None:
    sims = outcome.sims

    # 2 exports, "not ready" 3 times each, then ready: at least 8 polls.
    assert calls(sims["cm_pending"], BATCH_URLS) >= 8
    assert sims["cm_pending"].counters()["batch_submissions"] == 3


def test_no_poke_was_spent_past_an_exhausted_quota(outcome: Any) -> None:
    sims = outcome.sims

    # One call per task: no poke after the 429, and no Airflow retry either.
    assert calls(sims["cm_exhausted"], SCROLL) == 3
    assert calls(sims["cm_exhausted"], BATCH_URLS) == 1


def test_timed_out_sensors_stopped_polling(outcome: Any) -> None:
    sims = outcome.sims

    # Two batch sensors of 1 s, polling every 0.2 s: a handful of polls each, not hundreds.
    assert 2 <= calls(sims["cm_never"], BATCH_URLS) <= 40


def test_no_secret_reaches_the_logs_the_database_or_the_xcom(outcome: Any) -> None:
    # Access tokens, scroll ids, batch tokens, URL signatures and the client secret.
    secrets = [secret for handed_out in outcome.secrets for secret in handed_out]
    assert len(secrets) > 20
    assert leaked(secrets, outcome.run.output, outcome.dag.stored_text()) == []
