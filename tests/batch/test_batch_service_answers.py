"""The batch export operator facing odd answers of the service and of the file storage."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from starlette.responses import Response

from airflow_provider_centralmon._batch_resume import JOB_MARKER_NAME
from airflow_provider_centralmon._compat import AirflowFailException, TaskDeferred
from airflow_provider_centralmon.exceptions import (
    BatchError,
    CentralMonitoringError,
    InvalidParameterError,
    ProtocolError,
    QuotaExhaustedError,
    QuotaFloorError,
)
from airflow_provider_centralmon.hooks.centralmon import CentralMonitoringHook
from airflow_provider_centralmon.operators.batch import CentralMonitoringBatchExportOperator
from airflow_provider_centralmon.simulator import routes_files, routes_logs
from airflow_provider_centralmon.simulator.batches import PresignError
from airflow_provider_centralmon.simulator.handle import SimulatorHandle
from airflow_provider_centralmon.simulator.search import RequestError

from .support import (
    BATCH_URLS,
    FILES,
    FakeTaskInstance,
    attach,
    calls,
    iter_exported,
    list_files_gradually,
    make_context,
    truth,
    withhold_urls,
)

# -- readiness ----------------------------------------------------------------------------------


def test_a_file_list_still_growing_is_waited_for_when_confirmation_is_asked(
    sim: SimulatorHandle,
    window: tuple[datetime, datetime],
    make_task: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    listed = list_files_gradually(sim, monkeypatch)

    result = make_task(confirm_file_list=True).execute(make_context())

    assert list(iter_exported(result)) == truth(sim, *window)
    files = result["run"]["batch"]["files"]
    # Growing by one file a poll, then once more the same list.
    assert listed == [*range(1, files + 1), files]


def test_a_file_list_confirmed_at_once_costs_one_more_check(
    sim: SimulatorHandle,
    window: tuple[datetime, datetime],
    make_task: Callable[..., Any],
    logs: Callable[[], str],
) -> None:
    result = make_task(confirm_file_list=True).execute(make_context())

    assert list(iter_exported(result)) == truth(sim, *window)
    assert calls(sim, BATCH_URLS) == 2
    assert "checking once more" in logs()


def test_the_deferred_wait_confirms_the_file_list_when_asked(
    sim: SimulatorHandle, make_task: Callable[..., Any]
) -> None:
    with pytest.raises(TaskDeferred) as deferred:
        make_task(deferrable=True, confirm_file_list=True).execute(make_context())

    _, kwargs = deferred.value.trigger.serialize()
    assert kwargs["confirm_file_list"] is True


def test_files_listed_ready_without_their_urls_are_waited_for(
    sim: SimulatorHandle,
    window: tuple[datetime, datetime],
    make_task: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    withhold_urls(sim, monkeypatch, polls=2)

    result = make_task().execute(make_context())

    assert list(iter_exported(result)) == truth(sim, *window)
    assert calls(sim, BATCH_URLS) == 3


# -- parameters ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("poll_interval", float("inf"), "poll_interval must be a finite"),
        ("batch_timeout", float("inf"), "batch_timeout must be a finite"),
        ("batch_timeout", float("nan"), "batch_timeout must be more than 0"),
        ("batch_timeout", timedelta(days=400), "batch_timeout must be at most"),
        ("poll_interval", 10**12, "poll_interval must be at most"),
    ],
)
def test_durations_that_could_not_be_waited_are_refused_when_the_dag_is_parsed(
    option: str, value: Any, message: str, tmp_path: Any
) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        CentralMonitoringBatchExportOperator(
            task_id="export",
            application="atr",
            output_path=f"file://{tmp_path}",
            deferrable=True,
            **{option: value},
        )


# -- quotas -------------------------------------------------------------------------------------


def test_an_exhausted_quota_fails_the_task_without_airflow_retries(
    sim: SimulatorHandle, make_task: Callable[..., Any]
) -> None:
    sim.set_faults("/v1/logs/batch=rate_limit")

    with pytest.raises(QuotaExhaustedError) as exhausted:
        make_task().execute(make_context())
    with pytest.raises(QuotaFloorError) as below_floor:
        make_task(min_daily_remaining=10**6).execute(make_context())

    # Airflow fails a task raising AirflowFailException at once, whatever its retries.
    assert isinstance(exhausted.value, AirflowFailException)
    assert isinstance(below_floor.value, AirflowFailException)
    assert isinstance(exhausted.value, CentralMonitoringError)


# -- reconnecting to an earlier try's export ----------------------------------------------------


class StateStore:
    """Stands in for Airflow's task state store (Airflow 3.3 and later)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str) -> Any:
        return self.values.get(key)

    def set(self, key: str, value: Any) -> None:
        self.values[key] = value

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


@pytest.fixture(params=["task_state_store", "marker"])
def try_context(request: pytest.FixtureRequest) -> Callable[[int], dict[str, Any]]:
    """Contexts of successive tries, keeping the export in a state store or a marker file."""
    store = StateStore() if request.param == "task_state_store" else None

    def context(try_number: int) -> dict[str, Any]:
        extra = {} if store is None else {"task_state_store": store}
        return make_context(FakeTaskInstance(try_number=try_number), **extra)

    return context


def crash_after_submit(sim: SimulatorHandle, task: Any, context: dict[str, Any]) -> None:
    """Run a try that dies right after the export was accepted (its first check fails)."""
    sim.set_faults(f"{BATCH_URLS}=rate_limit,count=1")
    with pytest.raises(QuotaExhaustedError):
        task.execute(context)
    assert sim.counters()["batch_submissions"] == 1


def answer_unknown_tokens_with(status: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the urls route answer ``status`` (not the simulator's 400) for unknown tokens."""
    original = routes_logs.batch_urls

    def batch_urls(context: Any, body: Any) -> Any:
        token = body.get("token") if isinstance(body, dict) else None
        if isinstance(token, str) and context.state.batches.find(token) is None:
            raise RequestError(status, "Batch not found")
        return original(context, body)

    monkeypatch.setattr(routes_logs, "batch_urls", batch_urls)


@pytest.mark.parametrize("status", [404, 410])
def test_a_retry_submits_anew_when_the_service_answers_that_the_export_is_gone(
    sim: SimulatorHandle,
    window: tuple[datetime, datetime],
    make_task: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    try_context: Callable[[int], dict[str, Any]],
    logs: Callable[[], str],
    status: int,
) -> None:
    crash_after_submit(sim, make_task(), try_context(1))
    answer_unknown_tokens_with(status, monkeypatch)
    sim.state.batches.clear()

    result = make_task().execute(try_context(2))

    assert list(iter_exported(result)) == truth(sim, *window)
    assert sim.counters()["batch_submissions"] == 2
    assert result["run"]["batch"]["resumed"] is False
    assert "the service no longer lists it" in logs()


def test_a_wrong_urls_route_fails_the_first_check_of_a_fresh_export(
    sim: SimulatorHandle, make_task: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    attach(sim, monkeypatch, routes={"batch_urls": "/v1/logs/batch/no-such-route"})

    with pytest.raises(InvalidParameterError, match="route not found"):
        make_task().execute(make_context())

    assert sim.counters()["batch_submissions"] == 1


async def first_event(trigger: Any) -> dict[str, Any]:
    async for event in trigger.run():
        return dict(event.payload)
    raise AssertionError("the trigger ended without an event")


def delete_files_of_current_exports(sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make storage answer 404 NoSuchKey for the files of every export submitted so far."""
    gone = [job.job_id for job in sim.state.batches._by_token.values()]
    file_for = sim.state.batches.file_for

    def deleted(path: str, query: dict[str, str], now: datetime) -> Any:
        if any(job_id in path for job_id in gone):
            raise PresignError(404, "NoSuchKey", "The specified key does not exist.")
        return file_for(path, query, now)

    monkeypatch.setattr(sim.state.batches, "file_for", deleted)


def test_files_gone_from_storage_make_the_retry_submit_a_new_export(
    sim: SimulatorHandle,
    window: tuple[datetime, datetime],
    make_task: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    try_context: Callable[[int], dict[str, Any]],
) -> None:
    crash_after_submit(sim, make_task(), try_context(1))
    delete_files_of_current_exports(sim, monkeypatch)
    downloads_before = calls(sim, FILES)

    with pytest.raises(BatchError, match=r"gone from storage.*a retry submits a new export"):
        make_task().execute(try_context(2))
    # One check to reconnect, one for fresh URLs, which answered 404 as well.
    assert calls(sim, BATCH_URLS) == 1 + 2
    assert calls(sim, FILES) - downloads_before >= 2
    assert sim.counters()["batch_submissions"] == 1

    result = make_task().execute(try_context(3))

    assert list(iter_exported(result)) == truth(sim, *window)
    assert sim.counters()["batch_submissions"] == 2


def test_files_gone_after_a_deferred_wait_drop_the_retry_record(
    sim: SimulatorHandle,
    make_task: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    try_context: Callable[[int], dict[str, Any]],
    tmp_path: Any,
) -> None:
    context = try_context(1)
    with pytest.raises(TaskDeferred) as deferred:
        make_task(deferrable=True).execute(context)
    event = asyncio.run(first_event(deferred.value.trigger))
    delete_files_of_current_exports(sim, monkeypatch)
    store = context.get("task_state_store", StateStore())
    assert list(tmp_path.rglob(JOB_MARKER_NAME)) or store.values

    with pytest.raises(BatchError, match="gone from storage"):
        make_task(deferrable=True).execute_complete(context, event=event)

    assert not list(tmp_path.rglob(JOB_MARKER_NAME))
    assert not store.values


def test_without_url_renewals_left_a_missing_file_is_gone_at_once(
    sim: SimulatorHandle,
    make_task: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    try_context: Callable[[int], dict[str, Any]],
) -> None:
    crash_after_submit(sim, make_task(), try_context(1))
    delete_files_of_current_exports(sim, monkeypatch)

    with pytest.raises(BatchError, match="gone from storage"):
        make_task(max_url_refreshes=0).execute(try_context(2))

    make_task().execute(try_context(3))
    assert sim.counters()["batch_submissions"] == 2


def test_a_file_missing_once_is_fetched_with_fresh_urls(
    sim: SimulatorHandle,
    window: tuple[datetime, datetime],
    make_task: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    file_for = sim.state.batches.file_for
    misses: list[str] = []

    def missing_once(path: str, query: dict[str, str], now: datetime) -> Any:
        if not misses:
            misses.append(path)
            raise PresignError(404, "NoSuchKey", "The specified key does not exist.")
        return file_for(path, query, now)

    monkeypatch.setattr(sim.state.batches, "file_for", missing_once)

    result = make_task().execute(make_context())

    assert list(iter_exported(result)) == truth(sim, *window)
    assert result["run"]["batch"]["url_refreshes"] == 1
    assert sim.counters()["batch_submissions"] == 1


def refuse_first_download(
    sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch, status: int, code: str, message: str
) -> None:
    """Make storage refuse the first file download with an S3 error, then serve as usual."""
    file_for = sim.state.batches.file_for
    refused: list[str] = []

    def refuse_once(path: str, query: dict[str, str], now: datetime) -> Any:
        if not refused:
            refused.append(path)
            raise PresignError(status, code, message)
        return file_for(path, query, now)

    monkeypatch.setattr(sim.state.batches, "file_for", refuse_once)


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        # Signed with temporary credentials whose session has ended.
        (400, "ExpiredToken", "The provided token has expired."),
        (403, "AccessDenied", "Request has expired"),
    ],
)
def test_storage_saying_the_url_expired_brings_fresh_urls(
    sim: SimulatorHandle,
    window: tuple[datetime, datetime],
    make_task: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    status: int,
    code: str,
    message: str,
) -> None:
    refuse_first_download(sim, monkeypatch, status, code, message)

    result = make_task().execute(make_context())

    assert list(iter_exported(result)) == truth(sim, *window)
    assert result["run"]["batch"]["url_refreshes"] == 1


def test_another_refusal_of_storage_fails_without_fresh_urls(
    sim: SimulatorHandle, make_task: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    refuse_first_download(sim, monkeypatch, 400, "InvalidArgument", "Only one auth mechanism")

    with pytest.raises(BatchError, match="answered 400"):
        make_task().execute(make_context())

    assert calls(sim, BATCH_URLS) == 1


# -- file contents ------------------------------------------------------------------------------


def serve_files_as(monkeypatch: pytest.MonkeyPatch, transform: Callable[[bytes], bytes]) -> None:
    """Make storage send ``transform(body)`` instead of each file's JSON array of hits."""

    def transformed(rule: Any, content: bytes, request_id: str, media_type: str = "") -> Response:
        return Response(transform(content), 200, {"x-request-id": request_id}, "application/json")

    monkeypatch.setattr(routes_files, "damaged_reply", transformed)


def as_json_lines(content: bytes) -> bytes:
    return b"\n".join(json.dumps(hit).encode() for hit in json.loads(content))


@pytest.mark.parametrize(
    ("transform", "message"),
    [
        (
            lambda content: b'{"hits": ' + content + b"}",
            "not hold a JSON array: it starts with a JSON",
        ),
        (as_json_lines, "not hold a JSON array: it starts with a JSON object"),
        (gzip.compress, "gzip"),
        (lambda content: b"[1, 2, 3]", "an element that is not an object"),
    ],
    ids=["object", "json-lines", "gzip-without-content-encoding", "scalars"],
)
def test_a_file_in_another_format_fails_at_its_first_download(
    sim: SimulatorHandle,
    make_task: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    transform: Callable[[bytes], bytes],
    message: str,
    logs: Callable[[], str],
) -> None:
    serve_files_as(monkeypatch, transform)

    with pytest.raises(ProtocolError, match=message):
        make_task(download_concurrency=1).execute(make_context())

    # The one worker may have begun the next file before the failure stopped it.
    assert calls(sim, FILES) <= 2
    assert "downloading it again" not in logs()


def test_a_file_cut_short_is_downloaded_again(
    sim: SimulatorHandle,
    window: tuple[datetime, datetime],
    make_task: Callable[..., Any],
    logs: Callable[[], str],
) -> None:
    sim.set_faults("/_s3/*=truncate,count=1")

    result = make_task().execute(make_context())

    assert list(iter_exported(result)) == truth(sim, *window)
    assert calls(sim, FILES) == result["run"]["batch"]["files"] + 1
    assert "downloading it again" in logs()


def test_a_file_starting_with_a_byte_order_mark_is_read(
    sim: SimulatorHandle,
    window: tuple[datetime, datetime],
    make_task: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    serve_files_as(monkeypatch, lambda content: b"\xef\xbb\xbf" + content)

    result = make_task().execute(make_context())

    assert list(iter_exported(result)) == truth(sim, *window)


def state_record_counts_as_text(
    sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch, *, off_by: int
) -> None:
    """Make the urls route state each file's record count as a string of digits."""
    describe = sim.state.batches.describe

    def with_counts(job: Any, base_url: str, now: datetime) -> list[dict[str, Any]]:
        entries = describe(job, base_url, now)
        for index, entry in enumerate(entries):
            entry["record_count"] = str(len(job.files[index]) + off_by)
        return entries

    monkeypatch.setattr(sim.state.batches, "describe", with_counts)


def test_record_counts_stated_as_digits_are_read(
    sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    state_record_counts_as_text(sim, monkeypatch, off_by=0)

    with CentralMonitoringHook() as hook:
        token = hook.submit_batch({"application": "atr", "time_range": "now-30m"}).batch_token
        status = hook.get_batch_files(token)

    job = sim.state.batches.find(token)
    assert job is not None
    assert [file.record_count for file in status.files] == [len(file) for file in job.files]


def test_a_file_holding_fewer_records_than_stated_in_digits_fails(
    sim: SimulatorHandle, make_task: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    state_record_counts_as_text(sim, monkeypatch, off_by=1)

    with pytest.raises(ProtocolError, match=r"batch file \d+ held \d+ records, but the service"):
        make_task().execute(make_context())
