"""CentralMonitoringBatchSensor's pokes, deferral and resumption against the simulator."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from batch.support import (
    BATCH_URLS,
    attach,
    calls,
    leaked,
    make_context,
    record_secrets,
    withhold_urls,
)

from airflow_provider_centralmon._compat import (
    AirflowFailException,
    AirflowSensorTimeout,
    TaskDeferred,
)
from airflow_provider_centralmon.exceptions import (
    BatchError,
    InvalidParameterError,
    ProtocolError,
    QuotaExhaustedError,
)
from airflow_provider_centralmon.hooks.centralmon import CentralMonitoringHook
from airflow_provider_centralmon.sensors.batch import CentralMonitoringBatchSensor
from airflow_provider_centralmon.simulator.handle import SimulatorHandle
from airflow_provider_centralmon.triggers.batch import CentralMonitoringBatchTrigger


@pytest.fixture
def sim(
    centralmon_simulator_factory: Callable[..., SimulatorHandle], monkeypatch: pytest.MonkeyPatch
) -> SimulatorHandle:
    """A simulator whose exports are not ready for the first 2 polls, in files of 100."""
    handle = centralmon_simulator_factory(
        applications=("atr",),
        span=timedelta(hours=1),
        batch_pending_polls=2,
        batch_records_per_file=100,
    )
    return attach(handle, monkeypatch)


def submit(**body: Any) -> tuple[str, str]:
    """Submit an export; return its token and the token sealed."""
    with CentralMonitoringHook() as hook:
        token = hook.submit_batch({"application": "atr", "time_range": "now-30m", **body})
        return token.batch_token, hook.seal(token.batch_token)


def sensor(batch_ref: str, **kwargs: Any) -> CentralMonitoringBatchSensor:
    return CentralMonitoringBatchSensor(task_id="wait", batch_ref=batch_ref, **kwargs)


def test_pokes_until_every_file_is_ready_and_returns_their_metadata(sim: SimulatorHandle) -> None:
    _, sealed = submit()
    task = sensor(sealed)

    pokes = [task.poke(make_context()) for _ in range(3)]

    assert [poke.is_done for poke in pokes] == [False, False, True]
    files = pokes[-1].xcom_value["files"]
    [job] = sim.state.batches._by_token.values()
    assert len(files) == len(job.files) >= 3
    assert files[0]["index"] == 0
    assert files[0]["status"] == "completed"
    assert files[0]["expires_at"].endswith("Z")
    assert "http" not in json.dumps(files)


def test_a_failed_export_fails_the_poke(
    centralmon_simulator_factory: Callable[..., SimulatorHandle], monkeypatch: pytest.MonkeyPatch
) -> None:
    attach(centralmon_simulator_factory(batch_fail=True), monkeypatch)
    _, sealed = submit()

    with pytest.raises(BatchError, match="failed"):
        sensor(sealed).poke(make_context())


def test_an_exhausted_quota_fails_the_poke(sim: SimulatorHandle) -> None:
    _, sealed = submit()
    sim.set_faults(f"{BATCH_URLS}=rate_limit")

    with pytest.raises(QuotaExhaustedError):
        sensor(sealed).poke(make_context())


def test_a_deferrable_sensor_checks_once_then_defers(
    sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = record_secrets(sim, monkeypatch)
    _, sealed = submit()

    with pytest.raises(TaskDeferred) as deferred:
        sensor(sealed, deferrable=True, poke_interval=20, timeout=120).execute(make_context())

    trigger = deferred.value.trigger
    assert isinstance(trigger, CentralMonitoringBatchTrigger)
    _, kwargs = trigger.serialize()
    assert kwargs["batch_ref"] == sealed
    assert kwargs["poll_interval"] == 20
    assert kwargs["resume_with"] is None
    assert calls(sim, BATCH_URLS) == 1
    assert leaked(secrets, kwargs) == []


def test_a_deferrable_sensor_of_a_ready_export_does_not_defer(sim: SimulatorHandle) -> None:
    _, sealed = submit()
    sensor(sealed).poke(make_context())
    sensor(sealed).poke(make_context())

    result = sensor(sealed, deferrable=True).execute(make_context())

    assert [file["status"] for file in result["files"]] == ["completed"] * len(result["files"])


@pytest.mark.parametrize(
    ("event", "error", "message"),
    [
        ({"status": "timeout", "message": "not ready"}, AirflowSensorTimeout, "not ready"),
        ({"status": "failed", "message": "file 0: failed"}, BatchError, "file 0: failed"),
        ({"status": "error", "error_type": "BatchError", "message": "gone"}, BatchError, "gone"),
        ({"status": "success"}, BatchError, "without its files"),
        ({}, ProtocolError, "unknown trigger event"),
    ],
)
def test_every_trigger_outcome_is_handled(event: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        sensor("cmseal1:x").execute_complete(make_context(), event=event)


def test_a_success_event_returns_the_files() -> None:
    files = [{"index": 0, "status": "completed"}]

    result = sensor("cmseal1:x").execute_complete(
        make_context(), event={"status": "success", "files": files, "polls": 2}
    )

    assert result == {"files": files}


def test_a_plain_token_is_refused_when_the_dag_is_parsed() -> None:
    with pytest.raises(InvalidParameterError, match="sealed batch token"):
        sensor("a-plain-batch-token")


def test_a_template_is_checked_once_rendered(sim: SimulatorHandle) -> None:
    task = sensor("{{ params.ref }}")
    task.render_template_fields({"params": {"ref": "a-plain-batch-token"}})

    with pytest.raises(InvalidParameterError, match="sealed batch token") as raised:
        task.poke(make_context())

    assert "a-plain-batch-token" not in str(raised.value)
    assert calls(sim, BATCH_URLS) == 0


def test_a_reference_sealed_with_other_credentials_is_refused(sim: SimulatorHandle) -> None:
    with pytest.raises(InvalidParameterError, match="cannot be opened"):
        sensor("cmseal1:gAAAAABnotavalidfernettoken").poke(make_context())


def test_files_listed_ready_without_their_urls_are_not_done(
    sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    withhold_urls(sim, monkeypatch, polls=3)
    _, sealed = submit()
    task = sensor(sealed)

    pokes = [task.poke(make_context()).is_done for _ in range(4)]

    assert pokes == [False, False, False, True]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"poke_interval": 0}, "poke_interval must be more than 0"),
        ({"poke_interval": timedelta(0)}, "poke_interval must be more than 0"),
        ({"poke_interval": 10**12}, "poke_interval must be at most"),
    ],
)
@pytest.mark.parametrize("deferrable", [True, False])
def test_intervals_no_poll_could_keep_are_refused_when_the_dag_is_parsed(
    options: dict[str, Any], message: str, deferrable: bool
) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        sensor("cmseal1:x", deferrable=deferrable, **options)


def test_an_exhausted_quota_reported_by_the_trigger_fails_without_retries() -> None:
    event = {"status": "error", "error_type": "QuotaExhaustedError", "message": "429 quota"}

    with pytest.raises(QuotaExhaustedError) as raised:
        sensor("cmseal1:x").execute_complete(make_context(), event=event)

    assert isinstance(raised.value, AirflowFailException)
