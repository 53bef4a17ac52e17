"""The hooks over real HTTP on loopback, against the bundled simulator."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from airflow_provider_centralmon.exceptions import (
    AuthenticationError,
    ProtocolError,
    QuotaExhaustedError,
    ScrollExpiredError,
    ServiceError,
)
from airflow_provider_centralmon.hooks.centralmon import (
    CentralMonitoringHook,
    PresignedUrlExpiredError,
)
from airflow_provider_centralmon.hooks.centralmon_async import CentralMonitoringAsyncHook

SEARCH = {"application": "atr", "time_range": "now-2h/m", "size": 100}


@pytest.fixture
def sim(centralmon_simulator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    centralmon_simulator.use_as_connection(monkeypatch)
    return centralmon_simulator


@pytest.fixture
def hooks(sleeps: list[float]) -> Iterator[Callable[..., CentralMonitoringHook]]:
    made: list[CentralMonitoringHook] = []

    def make(conn_id: str = "centralmon_default", **kwargs: Any) -> CentralMonitoringHook:
        hook = CentralMonitoringHook(conn_id, sleep=sleeps.append, **kwargs)
        made.append(hook)
        return hook

    yield make
    for hook in made:
        hook.close()


def ids(records: list[dict[str, Any]]) -> list[str]:
    return [record["_id"] for record in records]


def test_scroll_of_a_window_equals_ground_truth(
    sim: Any, hooks: Callable[..., CentralMonitoringHook]
) -> None:
    pages = list(hooks().scroll(SEARCH))

    records = [record for page in pages for record in page.records]
    assert len(pages) > 2
    assert ids(records) == sim.expected_ids(SEARCH)
    assert records == sim.expected_hits(SEARCH)
    assert pages[0].meta.request_id
    assert pages[0].meta.daily_remaining == 99


def test_one_token_serves_every_call_hook_and_thread(
    sim: Any, hooks: Callable[..., CentralMonitoringHook]
) -> None:
    for _ in range(3):
        hook = hooks()
        list(hook.scroll(SEARCH, max_pages=2))
        hook.query({"domain_name": "acme-prod", "time_range": "now-1d"})

    counters = sim.counters()
    assert counters["token_requests"] == 1
    assert counters["routes"]["/v2/logs/scroll"]["calls"] == 6


def test_batch_flow_downloads_every_record_without_authorization(
    sim: Any, hooks: Callable[..., CentralMonitoringHook]
) -> None:
    hook = hooks()

    submission = hook.submit_batch(SEARCH)
    status = hook.get_batch_files(hook.unseal(hook.seal(submission.batch_token)))
    records = [record for file in status.files for record in hook.iter_batch_file(file.url or "")]

    assert status.ready
    assert not status.failed
    assert all(file.expires_at is not None for file in status.files)
    # The simulator refuses a presigned download that carries an Authorization header.
    assert ids(records) == sim.expected_ids(SEARCH)
    assert sim.counters()["batch_submissions"] == 1


def test_batch_not_ready_then_ready(
    centralmon_simulator_factory: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    hooks: Callable[..., CentralMonitoringHook],
) -> None:
    sim = centralmon_simulator_factory(batch_pending_polls=1)
    sim.use_as_connection(monkeypatch)
    hook = hooks()
    token = hook.submit_batch(SEARCH).batch_token

    first = hook.get_batch_files(token)
    second = hook.get_batch_files(token)

    assert (first.ready, first.failed) == (False, False)
    assert all(file.url is None for file in first.files)
    assert second.ready


def test_expired_presigned_url_asks_for_fresh_ones(
    sim: Any, hooks: Callable[..., CentralMonitoringHook]
) -> None:
    hook = hooks()
    token = hook.submit_batch(SEARCH).batch_token
    [file, *_] = hook.get_batch_files(token).files
    sim.clock.advance(4000)

    with pytest.raises(PresignedUrlExpiredError, match="fresh URLs"):
        list(hook.iter_batch_file(file.url or ""))

    [fresh, *_] = hook.get_batch_files(token).files
    assert sum(1 for _ in hook.iter_batch_file(fresh.url or "")) > 0


def test_quota_exhaustion_is_reported_not_retried(
    centralmon_simulator_factory: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    hooks: Callable[..., CentralMonitoringHook],
    sleeps: list[float],
) -> None:
    sim = centralmon_simulator_factory(quotas={"/v2/logs/scroll": 2})
    sim.use_as_connection(monkeypatch)
    hook = hooks()
    list(hook.scroll(SEARCH, max_pages=1))
    list(hook.scroll(SEARCH, max_pages=1))

    with pytest.raises(QuotaExhaustedError, match="last reported remaining: 0") as caught:
        list(hook.scroll(SEARCH, max_pages=1))

    assert caught.value.resets_at is not None
    assert "Rate limit exceeded" in str(caught.value)
    assert sleeps == []
    assert sim.counters()["routes"]["/v2/logs/scroll"]["calls"] == 3


@pytest.mark.parametrize("fault", ["error,status=502", "error,status=503", "drop"])
def test_transient_faults_are_retried(
    sim: Any, hooks: Callable[..., CentralMonitoringHook], sleeps: list[float], fault: str
) -> None:
    sim.set_faults(f"/v2/logs/scroll={fault},count=2")

    records = [r for page in hooks().scroll(SEARCH) for r in page.records]

    assert ids(records) == sim.expected_ids(SEARCH)
    assert len(sleeps) == 2


def test_a_lost_continuation_reply_says_the_cursor_moved_on(
    sim: Any, hooks: Callable[..., CentralMonitoringHook]
) -> None:
    pages = hooks().scroll(SEARCH)
    next(pages)
    # The service moves the cursor on, then the connection drops before its reply arrives:
    # the retry sends a scroll_id the service no longer knows.
    sim.set_faults("/v2/logs/scroll=drop,count=1")

    with pytest.raises(ScrollExpiredError) as raised:
        list(pages)

    message = str(raised.value)
    assert "the scroll cursor expired or moved on" in message
    assert "run the export again" in message
    assert "routes" not in message
    assert raised.value.http_status == 404
    assert raised.value.request_id


async def test_a_lost_continuation_reply_says_the_cursor_moved_on_in_the_async_hook(
    sim: Any,
) -> None:
    async def no_wait(seconds: float) -> None:
        pass

    pages = CentralMonitoringAsyncHook(sleep=no_wait).scroll(SEARCH)
    await anext(pages)
    sim.set_faults("/v2/logs/scroll=drop,count=1")

    with pytest.raises(ScrollExpiredError, match="the scroll cursor expired or moved on"):
        async for _ in pages:
            pass


def test_truncated_reply_is_a_protocol_error(
    sim: Any, hooks: Callable[..., CentralMonitoringHook]
) -> None:
    sim.set_faults("/v1/query=truncate,count=1")

    with pytest.raises(ProtocolError, match="malformed or truncated JSON"):
        hooks().query({"domain_name": "acme-prod", "time_range": "now-1d"})


def test_revoked_token_is_renewed_once(
    sim: Any, hooks: Callable[..., CentralMonitoringHook]
) -> None:
    hook = hooks()
    hook.query({"domain_name": "acme-prod", "time_range": "now-1d"})
    sim.revoke_tokens()

    hook.query({"domain_name": "acme-prod", "time_range": "now-1d"})

    assert sim.counters()["token_requests"] == 2


def test_connection_test_reports_wrong_secret(
    sim: Any, monkeypatch: pytest.MonkeyPatch, hooks: Callable[..., CentralMonitoringHook]
) -> None:
    conn = sim.connection_dict()
    conn["password"] = "not-the-secret-at-all"
    monkeypatch.setenv("AIRFLOW_CONN_WRONG", json.dumps(conn))

    ok, message = hooks("wrong").test_connection()
    with pytest.raises(AuthenticationError):
        hooks("wrong").query({})
    good, _ = hooks().test_connection()

    assert not ok
    assert "invalid_client" in message
    assert "password (client secret) of connection 'wrong'" in message
    assert "not-the-secret-at-all" not in message
    assert good
    assert sim.counters()["routes"] == {}


async def test_async_hook_polls_and_scrolls_with_the_shared_token(
    sim: Any, hooks: Callable[..., CentralMonitoringHook]
) -> None:
    sync_hook = hooks()
    token = sync_hook.submit_batch(SEARCH).batch_token
    async_hook = CentralMonitoringAsyncHook()

    status = await async_hook.get_batch_files(await async_hook.aunseal(sync_hook.seal(token)))
    pages = [page async for page in async_hook.scroll(SEARCH)]

    assert status.ready
    assert ids([r for p in pages for r in p.records]) == sim.expected_ids(SEARCH)
    assert sim.counters()["token_requests"] == 1


def test_no_credential_reaches_any_log_at_debug(
    sim: Any, hooks: Callable[..., CentralMonitoringHook], logs: Callable[[], str]
) -> None:
    hook = hooks()

    token = hook.submit_batch(SEARCH).batch_token
    status = hook.get_batch_files(token)
    for file in status.files:
        list(hook.iter_batch_file(file.url or ""))
    pages = list(hook.scroll(SEARCH, max_pages=2))

    text = logs()
    signatures = [
        value
        for file in status.files
        for key, value in parse_qsl(urlsplit(file.url or "").query)
        if key == "X-Amz-Signature"
    ]
    assert signatures
    assert len(pages) == 2
    assert "GET /_s3/" in text  # urllib3's request line is there, without its query
    for secret in (token, sim.client_secret, *signatures):
        assert secret not in text


def test_uri_form_connection_works(
    sim: Any, monkeypatch: pytest.MonkeyPatch, hooks: Callable[..., CentralMonitoringHook]
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_BY_URI", sim.connection_uri(timeout=5, verify="true"))

    hook = hooks("by_uri")
    ok, _ = hook.test_connection()

    assert ok
    assert hook.settings.base_url == sim.base_url
    assert hook.settings.timeout_s == 5


def test_download_cut_halfway_is_an_error_not_a_short_file(
    sim: Any, hooks: Callable[..., CentralMonitoringHook]
) -> None:
    hook = hooks()
    [file, *_] = hook.get_batch_files(hook.submit_batch(SEARCH).batch_token).files
    sim.set_faults("/_s3/*=drop,count=1")

    with pytest.raises(ServiceError, match="failed: ChunkedEncodingError"):
        list(hook.iter_batch_file(file.url or ""))

    assert sum(1 for _ in hook.iter_batch_file(file.url or "")) == len(sim.expected_ids(SEARCH))
