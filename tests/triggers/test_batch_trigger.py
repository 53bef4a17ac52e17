"""CentralMonitoringBatchTrigger driven one poll at a time against the simulator."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from batch.support import (
    BATCH_URLS,
    attach,
    calls,
    leaked,
    list_files_gradually,
    record_secrets,
    withhold_urls,
)

from airflow_provider_centralmon.exceptions import InvalidParameterError
from airflow_provider_centralmon.hooks.centralmon import CentralMonitoringHook
from airflow_provider_centralmon.simulator.handle import SimulatorHandle
from airflow_provider_centralmon.triggers.batch import CentralMonitoringBatchTrigger

from .stepping import Stepper

CLASSPATH = "airflow_provider_centralmon.triggers.batch.CentralMonitoringBatchTrigger"


def submit(sim: SimulatorHandle) -> tuple[str, str]:
    """Submit an export of the last 30 minutes; return its token and the token sealed."""
    with CentralMonitoringHook() as hook:
        token = hook.submit_batch({"application": "atr", "time_range": "now-30m"}).batch_token
        return token, hook.seal(token)


def make_trigger(sealed: str, **kwargs: Any) -> CentralMonitoringBatchTrigger:
    options: dict[str, Any] = {
        "batch_ref": sealed,
        "centralmon_conn_id": "centralmon_default",
        "deadline": time.time() + 600,
        "poll_interval": 30.0,
        **kwargs,
    }
    return CentralMonitoringBatchTrigger(**options)


@pytest.fixture
def pending_sim(
    centralmon_simulator_factory: Callable[..., SimulatorHandle], monkeypatch: pytest.MonkeyPatch
) -> SimulatorHandle:
    """A simulator whose exports answer "not ready" to the first two polls."""
    return attach(
        centralmon_simulator_factory(
            applications=("atr",), span=timedelta(hours=1), batch_pending_polls=2
        ),
        monkeypatch,
    )


def test_serialize_gives_json_arguments_that_rebuild_the_trigger() -> None:
    trigger = make_trigger(
        "cmseal1:abc", deadline=1_900_000_000.5, max_consecutive_failures=5, resume_with={"a": 1}
    )

    classpath, kwargs = trigger.serialize()

    assert classpath == CLASSPATH
    assert kwargs == {
        "batch_ref": "cmseal1:abc",
        "centralmon_conn_id": "centralmon_default",
        "deadline": 1_900_000_000.5,
        "poll_interval": 30.0,
        "max_consecutive_failures": 5,
        "confirm_file_list": False,
        "resume_with": {"a": 1},
    }
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert CentralMonitoringBatchTrigger(**kwargs).serialize() == (classpath, kwargs)
    assert "cmseal1" not in repr(trigger)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("poll_interval", 0),
        ("poll_interval", float("inf")),
        ("deadline", float("inf")),
        ("max_consecutive_failures", 0),
        ("batch_ref", ""),
    ],
)
def test_bad_arguments_are_refused(option: str, value: Any) -> None:
    with pytest.raises(InvalidParameterError):
        make_trigger("cmseal1:abc", **{option: value})


async def test_polls_sleep_between_them_until_every_file_is_ready(
    pending_sim: SimulatorHandle,
) -> None:
    _, sealed = submit(pending_sim)
    stepper = Stepper(make_trigger(sealed, resume_with={"job": "x"}))

    stepper.start()
    assert await stepper.pause() == 30.0
    assert calls(pending_sim, BATCH_URLS) == 1
    stepper.resume()
    assert await stepper.pause() == 30.0
    assert calls(pending_sim, BATCH_URLS) == 2
    stepper.resume()
    event = await stepper.event()

    assert calls(pending_sim, BATCH_URLS) == 3
    assert event["status"] == "success"
    assert event["polls"] == 3
    assert event["resume_with"] == {"job": "x"}
    [job] = pending_sim.state.batches._by_token.values()
    assert [f["index"] for f in event["files"]] == list(range(len(job.files)))
    assert set(event["files"][0]) == {
        "index",
        "time_range",
        "status",
        "ready",
        "record_count",
        "expires_at",
    }
    assert event["files"][0]["status"] == "completed"


async def test_files_listed_ready_without_their_urls_are_still_pending(
    pending_sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, sealed = submit(pending_sim)
    withhold_urls(pending_sim, monkeypatch, polls=3)
    stepper = Stepper(make_trigger(sealed))

    stepper.start()
    for _ in range(3):
        await stepper.pause()
        stepper.resume()
    event = await stepper.event()

    assert event["status"] == "success"
    assert event["polls"] == 4


async def test_with_confirmation_a_growing_file_list_is_polled_until_it_stays_the_same(
    centralmon_simulator_factory: Callable[..., SimulatorHandle], monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = attach(
        centralmon_simulator_factory(
            applications=("atr",), span=timedelta(hours=1), batch_records_per_file=100
        ),
        monkeypatch,
    )
    _, sealed = submit(sim)
    listed = list_files_gradually(sim, monkeypatch)
    stepper = Stepper(make_trigger(sealed, confirm_file_list=True))

    event = await stepper.run_to_event()

    [job] = sim.state.batches._by_token.values()
    assert len(job.files) >= 3
    assert event["status"] == "success"
    assert len(event["files"]) == len(job.files)
    assert listed == [*range(1, len(job.files) + 1), len(job.files)]
    assert stepper.waits == [30.0] * len(job.files)


async def test_no_wait_reaches_past_the_deadline(pending_sim: SimulatorHandle) -> None:
    _, sealed = submit(pending_sim)
    stepper = Stepper(make_trigger(sealed, deadline=time.time() + 5, poll_interval=60))

    stepper.start()
    waited = await stepper.pause()
    await stepper.close()

    assert 0 < waited <= 5


async def test_a_passed_deadline_sends_a_timeout_event(pending_sim: SimulatorHandle) -> None:
    _, sealed = submit(pending_sim)
    stepper = Stepper(make_trigger(sealed, deadline=time.time() - 1))

    event = await stepper.run_to_event()

    assert event == {
        "status": "timeout",
        "message": "the batch export was not ready after 1 polls",
        "polls": 1,
        "resume_with": None,
    }
    assert stepper.waits == []


async def test_a_failed_export_sends_a_failed_event(
    centralmon_simulator_factory: Callable[..., SimulatorHandle], monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = attach(
        centralmon_simulator_factory(
            applications=("atr",), span=timedelta(hours=1), batch_fail=True
        ),
        monkeypatch,
    )
    _, sealed = submit(sim)

    event = await Stepper(make_trigger(sealed)).run_to_event()

    assert event["status"] == "failed"
    assert "file 0: failed" in event["message"]


async def test_polls_failing_in_a_row_end_the_trigger_instead_of_spinning(
    pending_sim: SimulatorHandle,
) -> None:
    _, sealed = submit(pending_sim)
    pending_sim.set_faults(f"{BATCH_URLS}=error,status=503")
    stepper = Stepper(make_trigger(sealed, max_consecutive_failures=3))

    event = await stepper.run_to_event()

    assert event["status"] == "error"
    assert event["error_type"] == "ServiceError"
    assert len(stepper.waits) == 2
    # Each failed poll is the hook's first try and its 4 retries.
    assert calls(pending_sim, BATCH_URLS) == 3 * 5


async def test_a_success_resets_the_count_of_failures(pending_sim: SimulatorHandle) -> None:
    _, sealed = submit(pending_sim)
    one_failed_poll = f"{BATCH_URLS}=error,status=503,count=5"  # a try and 4 retries
    stepper = Stepper(make_trigger(sealed, max_consecutive_failures=2))
    pending_sim.set_faults(one_failed_poll)

    stepper.start()
    await stepper.pause()  # poll 1 failed
    stepper.resume()
    await stepper.pause()  # poll 2: not ready
    pending_sim.set_faults(one_failed_poll)
    stepper.resume()
    await stepper.pause()  # poll 3 failed: the first failure in a row again
    stepper.resume()
    await stepper.pause()  # poll 4: not ready
    stepper.resume()
    event = await stepper.event()

    assert event["status"] == "success"
    assert event["polls"] == 5


async def test_a_token_the_service_does_not_know_sends_an_error_event(
    pending_sim: SimulatorHandle,
) -> None:
    with CentralMonitoringHook() as hook:
        sealed = hook.seal("not-a-batch-token")

    event = await Stepper(make_trigger(sealed)).run_to_event()

    assert event["status"] == "error"
    assert event["error_type"] == "BadRequestError"
    assert "not-a-batch-token" not in json.dumps(event)


async def test_a_reference_sealed_with_other_credentials_sends_an_error_event(
    pending_sim: SimulatorHandle,
) -> None:
    event = await Stepper(make_trigger("cmseal1:garbage")).run_to_event()

    assert event["status"] == "error"
    assert event["error_type"] == "InvalidParameterError"


async def test_no_secret_reaches_the_arguments_or_the_events(
    pending_sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch, logs: Callable[[], str]
) -> None:
    secrets = record_secrets(pending_sim, monkeypatch)
    token, sealed = submit(pending_sim)
    trigger = make_trigger(sealed)
    stepper = Stepper(trigger)

    event = await stepper.run_to_event()

    assert event["status"] == "success"
    assert token in secrets
    assert len(secrets) >= 5
    assert leaked(secrets, trigger.serialize(), event, logs()) == []
