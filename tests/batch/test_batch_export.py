"""CentralMonitoringBatchExportOperator against the simulator, run in the test process."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from requests.adapters import HTTPAdapter

from airflow_provider_centralmon._batch_resume import JOB_MARKER_NAME
from airflow_provider_centralmon._compat import TaskDeferred
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
from airflow_provider_centralmon.simulator.clock import ManualClock
from airflow_provider_centralmon.simulator.handle import SimulatorHandle
from airflow_provider_centralmon.triggers.batch import CentralMonitoringBatchTrigger

from .export_fixtures import FILE_RECORDS, URL_LIFETIME_S
from .support import (
    BATCH_URLS,
    FILES,
    FakeTaskInstance,
    OutletEvents,
    attach,
    calls,
    export_directory,
    iter_exported,
    leaked,
    make_context,
    past_window,
    record_secrets,
    truth,
)


def file_count(sim: SimulatorHandle) -> int:
    return len(next(iter(sim.state.batches._by_token.values())).files)


def test_exports_the_window_from_several_files_in_parallel(
    sim: SimulatorHandle, window: tuple[datetime, datetime], make_task: Callable[..., Any]
) -> None:
    ti = FakeTaskInstance()

    result = make_task(download_concurrency=3).execute(make_context(ti))

    expected = truth(sim, *window)
    assert list(iter_exported(result)) == expected
    assert result["counts"]["records"] == len(expected) > 300
    assert file_count(sim) >= 3
    assert calls(sim, FILES) == file_count(sim)
    assert sim.counters()["batch_submissions"] == 1
    assert result["run"]["batch"]["files"] == file_count(sim)
    assert result["run"]["batch"]["records_downloaded"] > len(expected)
    trimmed = result["run"]["export"]["window_filter"]["trimmed"]
    assert trimmed == result["run"]["batch"]["records_downloaded"] - len(expected)


def test_a_later_rerun_that_receives_more_records_outside_the_window_changes_only_run_json(
    centralmon_simulator_factory: Callable[..., SimulatorHandle],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
) -> None:
    # Records keep arriving after the window's end, as on the live service: about 70 in the
    # 35 s between the runs.
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    sim = centralmon_simulator_factory(
        applications=("atr",),
        clock=ManualClock(start=now),
        dataset_end=now + timedelta(hours=1),
        records_per_minute=120,
    )
    attach(sim, monkeypatch)
    start, end = past_window(sim, 40, gap=20)
    options = {"start": start, "end": end, "output_path": f"file://{tmp_path}/out"}

    def export() -> tuple[dict[str, Any], dict[str, bytes]]:
        result = CentralMonitoringBatchExportOperator(
            task_id="export", application="atr", poll_interval=0.01, deferrable=False, **options
        ).execute(make_context())
        directory = export_directory(result)
        return result, {path.name: path.read_bytes() for path in directory.iterdir()}

    first, first_files = export()
    # 35 s: not a whole minute, so the relative lower bound reaches back by another amount.
    sim.clock.advance(35)
    second, second_files = export()

    assert first_files.keys() == second_files.keys()
    for name, content in first_files.items():
        assert (second_files[name] == content) is (name != "_run.json"), name
    assert first["run"]["batch"]["time_range"] != second["run"]["batch"]["time_range"]
    runs = [result["run"]["export"]["window_filter"] for result in (first, second)]
    assert 0 < runs[0]["after_window"] < runs[1]["after_window"]
    assert list(iter_exported(second)) == truth(sim, start, end)


class BusySubmission(HTTPAdapter):
    """Answers the batch submission ``busy`` times with a 503 asking for two minutes."""

    def __init__(self, busy: int) -> None:
        super().__init__()
        self.busy = busy
        self.time_ranges: list[str] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if request.method == "POST" and str(request.url).endswith("/v1/logs/batch"):
            self.time_ranges.append(json.loads(request.body or b"{}")["time_range"])
            if self.busy > 0:
                self.busy -= 1
                response = requests.Response()
                response.status_code, response._content = 503, b"<html>busy</html>"
                response.headers["Retry-After"] = "120"
                response.url, response.request = str(request.url), request
                return response
        return super().send(request, **kwargs)


def test_retries_of_the_submission_keep_the_start_of_the_window(
    sim: SimulatorHandle, window: tuple[datetime, datetime], tmp_path: Any
) -> None:
    adapter = BusySubmission(busy=4)

    class DelayedBatchOperator(CentralMonitoringBatchExportOperator):
        def get_hook(self) -> CentralMonitoringHook:
            return CentralMonitoringHook(
                self.centralmon_conn_id,
                http_adapter=adapter,
                clock=lambda: self.now().timestamp(),
                sleep=sim.clock.advance,
            )

    task = DelayedBatchOperator(
        task_id="export",
        application="atr",
        start=window[0],
        end=window[1],
        output_path=f"file://{tmp_path}/out",
        poll_interval=0.01,
        deferrable=False,
    )

    result = task.execute(make_context())

    assert list(iter_exported(result)) == truth(sim, *window)
    assert len(set(adapter.time_ranges)) == 5


def test_the_sealed_batch_reference_is_pushed_and_the_retry_record_removed(
    sim: SimulatorHandle, make_task: Callable[..., Any]
) -> None:
    ti = FakeTaskInstance()

    result = make_task().execute(make_context(ti))

    [token] = sim.state.batches._by_token
    ref = ti.xcom["batch_ref"]
    assert ref.startswith("cmseal1:")
    assert token not in ref
    with CentralMonitoringHook() as hook:
        assert hook.unseal(ref) == token
    assert not (export_directory(result) / JOB_MARKER_NAME).exists()


def test_the_worker_polls_until_every_file_is_ready(
    centralmon_simulator_factory: Callable[..., SimulatorHandle],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
) -> None:
    sim = attach(
        centralmon_simulator_factory(
            applications=("atr",), span=timedelta(hours=2), batch_pending_polls=3
        ),
        monkeypatch,
    )
    start, end = past_window(sim, 20)
    task = CentralMonitoringBatchExportOperator(
        task_id="export",
        application="atr",
        start=start,
        end=end,
        output_path=f"file://{tmp_path}",
        poll_interval=0.01,
        deferrable=False,
    )

    result = task.execute(make_context())

    assert list(iter_exported(result)) == truth(sim, start, end)
    assert calls(sim, BATCH_URLS) == 4


def test_a_batch_never_ready_times_out_and_keeps_its_record_for_the_retry(
    centralmon_simulator_factory: Callable[..., SimulatorHandle],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
) -> None:
    sim = attach(
        centralmon_simulator_factory(
            applications=("atr",), span=timedelta(hours=2), batch_ready_delay_s=3600
        ),
        monkeypatch,
    )
    start, end = past_window(sim, 20)
    task = CentralMonitoringBatchExportOperator(
        task_id="export",
        application="atr",
        start=start,
        end=end,
        output_path=f"file://{tmp_path}",
        layout="exact",
        poll_interval=0.01,
        batch_timeout=0.05,
        deferrable=False,
    )

    with pytest.raises(BatchError, match="not ready within batch_timeout"):
        task.execute(make_context())

    marker = json.loads((tmp_path / JOB_MARKER_NAME).read_text())
    assert marker["job"]["batch_ref"].startswith("cmseal1:")
    [token] = sim.state.batches._by_token
    assert token not in json.dumps(marker)


def test_a_failed_batch_fails_the_task(
    centralmon_simulator_factory: Callable[..., SimulatorHandle],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
) -> None:
    sim = attach(
        centralmon_simulator_factory(
            applications=("atr",), span=timedelta(hours=2), batch_fail=True
        ),
        monkeypatch,
    )
    start, end = past_window(sim, 20)
    task = CentralMonitoringBatchExportOperator(
        task_id="export",
        application="atr",
        start=start,
        end=end,
        output_path=f"file://{tmp_path}",
        deferrable=False,
    )

    with pytest.raises(BatchError, match="failed"):
        task.execute(make_context())


def expire_urls_after_first_listing(
    sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch, *, every_time: bool = False
) -> list[int]:
    """Move the simulator's clock past the URLs' lifetime right after they are listed."""
    listings: list[int] = []
    original = CentralMonitoringHook.get_batch_files

    def listing_then_expiry(hook: CentralMonitoringHook, token: str) -> Any:
        status = original(hook, token)
        listings.append(len(status.files))
        if len(listings) == 1 or every_time:
            sim.clock.advance(URL_LIFETIME_S + 1)
        return status

    monkeypatch.setattr(CentralMonitoringHook, "get_batch_files", listing_then_expiry)
    return listings


def test_expired_urls_are_renewed_once_for_every_file(
    sim: SimulatorHandle,
    window: tuple[datetime, datetime],
    make_task: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    logs: Callable[[], str],
) -> None:
    listings = expire_urls_after_first_listing(sim, monkeypatch)

    result = make_task(download_concurrency=4).execute(make_context())

    assert list(iter_exported(result)) == truth(sim, *window)
    assert len(listings) == 2
    assert result["run"]["batch"]["url_refreshes"] == 1
    assert "Presigned URLs had expired; fetched fresh ones (renewal 1 of at most 3)" in logs()


def test_urls_that_keep_expiring_fail_after_the_refresh_budget(
    sim: SimulatorHandle, make_task: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    listings = expire_urls_after_first_listing(sim, monkeypatch, every_time=True)

    with pytest.raises(BatchError, match="presigned URLs kept expiring"):
        make_task(max_url_refreshes=2).execute(make_context())

    assert len(listings) == 3


def state_record_counts(
    monkeypatch: pytest.MonkeyPatch, sim: SimulatorHandle, *, off_by: int = 0
) -> None:
    """Make the urls route state each file's record count (the simulator does not)."""
    original = CentralMonitoringHook.get_batch_files

    def with_counts(hook: CentralMonitoringHook, token: str) -> Any:
        status = original(hook, token)
        job = sim.state.batches.find(token)
        assert job is not None
        files = tuple(
            dataclasses.replace(file, record_count=len(job.files[file.index]) + off_by)
            for file in status.files
        )
        return dataclasses.replace(status, files=files)

    monkeypatch.setattr(CentralMonitoringHook, "get_batch_files", with_counts)


def test_stated_record_counts_are_checked(
    sim: SimulatorHandle,
    make_task: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    logs: Callable[[], str],
) -> None:
    state_record_counts(monkeypatch, sim)

    result = make_task().execute(make_context())

    assert result["counts"]["records"] > 0
    assert f"Batch file 1 of {file_count(sim)}: {FILE_RECORDS} records (as stated)" in logs()


def test_a_file_holding_fewer_records_than_stated_fails_the_export(
    sim: SimulatorHandle, make_task: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    state_record_counts(monkeypatch, sim, off_by=1)

    with pytest.raises(ProtocolError, match=r"batch file \d+ held \d+ records, but the service"):
        make_task().execute(make_context())


def test_a_connection_dropped_midway_downloads_the_file_again(
    sim: SimulatorHandle,
    window: tuple[datetime, datetime],
    make_task: Callable[..., Any],
    logs: Callable[[], str],
) -> None:
    sim.set_faults("/_s3/*=drop,count=1")

    result = make_task().execute(make_context())

    assert list(iter_exported(result)) == truth(sim, *window)
    assert calls(sim, FILES) == file_count(sim) + 1
    assert "downloading it again" in logs()


def test_the_quota_floor_refuses_to_submit(
    sim: SimulatorHandle, make_task: Callable[..., Any]
) -> None:
    make_task().execute(make_context())

    with pytest.raises(QuotaFloorError, match="min_daily_remaining=50"):
        make_task(min_daily_remaining=50).execute(make_context())

    assert sim.counters()["batch_submissions"] == 1


def test_an_exhausted_batch_quota_fails_before_anything_is_written(
    sim: SimulatorHandle, make_task: Callable[..., Any], tmp_path: Any
) -> None:
    sim.set_faults("/v1/logs/batch=rate_limit")

    with pytest.raises(QuotaExhaustedError):
        make_task().execute(make_context())

    assert not list(tmp_path.rglob("*.json"))


def test_the_output_is_an_asset_outlet_whose_event_names_the_export(
    sim: SimulatorHandle, make_task: Callable[..., Any], tmp_path: Any
) -> None:
    task = make_task()
    [asset] = task.outlets
    events = OutletEvents()

    result = task.execute(make_context(outlet_events=events))

    assert asset.uri == f"file://{tmp_path}/out"
    assert events[asset].extra["path"] == result["path"]
    assert events[asset].extra["records"] == result["counts"]["records"] > 0


def test_an_export_without_matching_records_is_published_empty(
    sim: SimulatorHandle, make_task: Callable[..., Any]
) -> None:
    result = make_task(filters={"level": "NO-SUCH-LEVEL"}).execute(make_context())

    assert result["counts"]["records"] == 0
    assert result["run"]["batch"]["files"] == 1
    assert list(iter_exported(result)) == []


def test_a_raw_time_range_is_exported_as_the_service_matched_it(
    sim: SimulatorHandle, tmp_path: Any
) -> None:
    body = {"application": "atr", "time_range": "now-20m"}
    task = CentralMonitoringBatchExportOperator(
        task_id="export",
        output_path=f"file://{tmp_path}",
        deferrable=False,
        poll_interval=0.01,
        **body,
    )

    result = task.execute(make_context())

    hits = sorted(
        sim.expected_hits(body), key=lambda hit: (hit["_source"]["@timestamp"], hit["_id"])
    )
    assert list(iter_exported(result)) == [hit["_source"] for hit in hits]
    assert "/requested-" in result["path"]
    assert result["run"]["batch"]["time_range"] == "now-20m"


# -- resuming without Airflow's task state store (Airflow before 3.3) ---------------------------


def crash_after_submit(sim: SimulatorHandle, task: Any, ti: FakeTaskInstance) -> str:
    """Run a try that dies right after the batch was accepted (its first status check fails).

    Returns the error's text.
    """
    sim.set_faults("/v1/logs/batch/urls=rate_limit,count=1")
    with pytest.raises(QuotaExhaustedError) as failure:
        task.execute(make_context(ti))
    assert sim.counters()["batch_submissions"] == 1
    return str(failure.value)


def test_a_retry_reconnects_to_the_submitted_batch(
    sim: SimulatorHandle,
    window: tuple[datetime, datetime],
    make_task: Callable[..., Any],
    logs: Callable[[], str],
) -> None:
    crash_after_submit(sim, make_task(), FakeTaskInstance(try_number=1))
    retry = FakeTaskInstance(try_number=2)

    result = make_task().execute(make_context(retry))

    assert list(iter_exported(result)) == truth(sim, *window)
    assert sim.counters()["batch_submissions"] == 1
    assert result["run"]["batch"]["resumed"] is True
    assert retry.xcom["batch_ref"].startswith("cmseal1:")
    assert "by an earlier try" in logs()
    assert not (export_directory(result) / JOB_MARKER_NAME).exists()


def test_a_batch_the_service_no_longer_knows_is_submitted_anew(
    sim: SimulatorHandle, make_task: Callable[..., Any], logs: Callable[[], str]
) -> None:
    crash_after_submit(sim, make_task(), FakeTaskInstance())
    sim.state.batches.clear()

    result = make_task().execute(make_context(FakeTaskInstance(try_number=2)))

    assert result["counts"]["records"] > 0
    assert sim.counters()["batch_submissions"] == 2
    assert "the service no longer lists it" in logs()
    assert "Submitting a new one" in logs()


def test_a_record_of_another_query_is_not_reused(
    sim: SimulatorHandle, make_task: Callable[..., Any], logs: Callable[[], str]
) -> None:
    crash_after_submit(sim, make_task(layout="exact"), FakeTaskInstance())

    make_task(layout="exact", filters={"level": "ERROR"}).execute(make_context())

    assert sim.counters()["batch_submissions"] == 2
    assert "it was submitted for another query" in logs()


def test_a_record_of_another_run_is_ignored(
    sim: SimulatorHandle, make_task: Callable[..., Any]
) -> None:
    crash_after_submit(sim, make_task(), FakeTaskInstance(run_id="scheduled__1"))

    make_task().execute(make_context(FakeTaskInstance(run_id="scheduled__2")))

    assert sim.counters()["batch_submissions"] == 2


def test_a_task_that_is_not_durable_keeps_no_record(
    sim: SimulatorHandle, make_task: Callable[..., Any], tmp_path: Any
) -> None:
    crash_after_submit(sim, make_task(durable=False), FakeTaskInstance())

    assert not list(tmp_path.rglob(JOB_MARKER_NAME))


# -- deferral -----------------------------------------------------------------------------------


def test_the_deferrable_task_submits_then_defers_with_a_small_trigger(
    sim: SimulatorHandle, make_task: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = record_secrets(sim, monkeypatch)
    ti = FakeTaskInstance()

    with pytest.raises(TaskDeferred) as deferred:
        make_task(deferrable=True, poll_interval=30, batch_timeout=600).execute(make_context(ti))

    trigger = deferred.value.trigger
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_centralmon.triggers.batch.CentralMonitoringBatchTrigger"
    assert set(kwargs) == {
        "batch_ref",
        "centralmon_conn_id",
        "deadline",
        "poll_interval",
        "max_consecutive_failures",
        "confirm_file_list",
        "resume_with",
    }
    assert kwargs["batch_ref"] == ti.xcom["batch_ref"]
    assert kwargs["poll_interval"] == 30
    assert kwargs["resume_with"]["batch_ref"] == kwargs["batch_ref"]
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert deferred.value.method_name == "execute_complete"
    assert sim.counters()["batch_submissions"] == 1
    assert leaked(secrets, kwargs, repr(trigger), ti.xcom) == []


def run_trigger(trigger: CentralMonitoringBatchTrigger) -> dict[str, Any]:
    async def first_event() -> dict[str, Any]:
        async for event in trigger.run():
            return dict(event.payload)
        raise AssertionError("the trigger ended without an event")

    return asyncio.run(first_event())


def test_after_the_trigger_the_task_downloads_and_publishes(
    sim: SimulatorHandle, window: tuple[datetime, datetime], make_task: Callable[..., Any]
) -> None:
    task = make_task(deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        task.execute(make_context())
    event = run_trigger(deferred.value.trigger)

    result = make_task(deferrable=True).execute_complete(make_context(), event=event)

    assert event["status"] == "success"
    assert list(iter_exported(result)) == truth(sim, *window)
    assert sim.counters()["batch_submissions"] == 1


@pytest.mark.parametrize(
    ("event", "error", "message"),
    [
        ({"status": "failed", "message": "the export failed"}, BatchError, "export failed"),
        ({"status": "timeout", "polls": 7}, BatchError, "not ready within batch_timeout"),
        (
            {"status": "error", "error_type": "QuotaExhaustedError", "message": "429 quota"},
            QuotaExhaustedError,
            "429 quota",
        ),
        (
            {"status": "error", "error_type": "os.system", "message": "x"},
            CentralMonitoringError,
            "x",
        ),
        ({"status": "cancelled"}, ProtocolError, "unknown trigger event"),
        (None, ProtocolError, "unknown trigger event"),
        ({"status": "success"}, BatchError, "without the submitted export"),
    ],
)
def test_every_trigger_outcome_is_handled(
    sim: SimulatorHandle,
    make_task: Callable[..., Any],
    event: dict[str, Any] | None,
    error: type[Exception],
    message: str,
) -> None:
    with pytest.raises(error, match=message):
        make_task(deferrable=True).execute_complete(make_context(), event=event)


# -- parameters and secrets ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("poll_interval", 0, "poll_interval must be more than 0"),
        ("batch_timeout", -1, "batch_timeout must be more than 0"),
        ("download_concurrency", 0, "download_concurrency must be a whole number of 1"),
        ("max_url_refreshes", -1, "max_url_refreshes must be a whole number"),
        ("deferrable", "yes", "deferrable must be True or False"),
        ("durable", None, "durable must be True or False"),
    ],
)
def test_parameters_are_checked_when_the_dag_is_parsed(
    option: str, value: Any, message: str, tmp_path: Any
) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        CentralMonitoringBatchExportOperator(
            task_id="export",
            application="atr",
            output_path=f"file://{tmp_path}",
            **{option: value},
        )


def test_a_relative_output_path_fails_when_the_dag_is_parsed() -> None:
    with pytest.raises(InvalidParameterError, match="needs a scheme"):
        CentralMonitoringBatchExportOperator(
            task_id="export", application="atr", output_path="exports/atr"
        )


@pytest.mark.parametrize("durable", [True, False])
def test_a_scheme_without_a_filesystem_fails_before_the_submission(
    sim: SimulatorHandle, make_task: Callable[..., Any], durable: bool
) -> None:
    task = make_task(output_path="nosuchfs://bucket/logs", durable=durable)

    with pytest.raises(InvalidParameterError, match="no filesystem for the scheme 'nosuchfs'"):
        task.execute(make_context())

    assert sim.counters()["batch_submissions"] == 0


def test_a_missing_spill_dir_fails_before_the_submission(
    sim: SimulatorHandle, make_task: Callable[..., Any], tmp_path: Any
) -> None:
    task = make_task(spill_dir=f"{tmp_path}/missing")

    with pytest.raises(InvalidParameterError, match="spill_dir"):
        task.execute(make_context())

    assert sim.counters()["batch_submissions"] == 0


def test_an_output_path_that_is_a_file_fails_before_the_submission(
    sim: SimulatorHandle, make_task: Callable[..., Any], tmp_path: Any
) -> None:
    (tmp_path / "out").write_text("precious")

    with pytest.raises(InvalidParameterError, match="exists and is not a directory"):
        make_task(layout="exact").execute(make_context())

    assert sim.counters()["batch_submissions"] == 0
    assert (tmp_path / "out").read_text() == "precious"


def test_no_secret_reaches_xcom_the_output_the_logs_or_errors(
    sim: SimulatorHandle,
    make_task: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    logs: Callable[[], str],
    tmp_path: Any,
) -> None:
    secrets = record_secrets(sim, monkeypatch)
    ti = FakeTaskInstance()
    errors = [crash_after_submit(sim, make_task(), ti)]
    sim.set_faults("/_s3/*=drop,count=1")
    expire_urls_after_first_listing(sim, monkeypatch)

    result = make_task().execute(make_context(ti))
    with pytest.raises(CentralMonitoringError) as failure:
        make_task(min_daily_remaining=1000).execute(make_context())
    errors.append(str(failure.value))

    files = [path.read_bytes().decode(errors="replace") for path in tmp_path.rglob("*.json")]
    assert len(secrets) > 4
    assert leaked(secrets, result, ti.xcom, logs(), *errors, *files) == []
