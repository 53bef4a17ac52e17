from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
import requests
from hook_fakes import FakeService, Reply

from airflow_provider_centralmon.exceptions import (
    AuthenticationError,
    CentralMonitoringError,
    InvalidParameterError,
    ProtocolError,
    QuotaExhaustedError,
    ServiceError,
)

PENDING = Reply.json({"presigned_urls": [{"ready": False, "status": "pending"}]})
SEARCH = {"application": "atr", "time_range": "now-15m/m"}


async def test_batch_files_are_polled_with_the_token_of_the_sync_hook(
    make_hook: Callable[..., Any], make_async_hook: Callable[..., Any], service: FakeService
) -> None:
    service.on("/v1/logs/batch/urls", PENDING)
    make_hook().test_connection()

    status = await make_async_hook().get_batch_files("batch-token")

    assert not status.ready
    assert len(service.token_requests) == 1
    assert service.api_requests[0].headers["authorization"] == "Bearer token-1-abcdefgh"
    assert service.api_requests[0].json() == {"token": "batch-token"}


async def test_ten_coroutines_share_one_token(
    make_async_hook: Callable[..., Any], service: FakeService
) -> None:
    service.on("/v1/logs/batch/urls", PENDING)
    hooks = [make_async_hook() for _ in range(10)]

    await asyncio.gather(*(hook.get_batch_files("t") for hook in hooks))

    assert len(service.token_requests) == 1
    assert len(service.api_requests) == 10


async def test_async_scroll_follows_the_cursor(
    make_async_hook: Callable[..., Any], service: FakeService
) -> None:
    service.on(
        "/v2/logs/scroll",
        Reply.json({"logs": [{"n": 1}], "scroll_id": "c1", "has_more": True}),
        Reply.json({"logs": [{"n": 2}], "scroll_id": "c2", "has_more": False}),
    )

    pages = [page async for page in make_async_hook().scroll(SEARCH)]

    assert [r["n"] for p in pages for r in p.records] == [1, 2]
    assert [r.json() for r in service.api_requests] == [SEARCH, {"scroll_id": "c1"}]


async def test_async_first_body_function_is_built_for_each_attempt_after_the_token(
    make_async_hook: Callable[..., Any], service: FakeService, sleeps: list[float]
) -> None:
    busy = Reply(503, b"<html>busy</html>", {"Retry-After": "120"})
    service.on(
        "/v2/logs/scroll",
        busy,
        busy,
        Reply.json({"logs": [{"n": 1}], "scroll_id": "c1", "has_more": False}),
    )
    tokens_when_built: list[int] = []

    def first_body() -> dict[str, Any]:
        tokens_when_built.append(len(service.token_requests))
        return {**SEARCH, "attempt": len(tokens_when_built)}

    pages = [page async for page in make_async_hook().scroll(first_body)]

    assert [r["n"] for p in pages for r in p.records] == [1]
    assert tokens_when_built == [1, 1, 1]
    assert [r.json()["attempt"] for r in service.api_requests] == [1, 2, 3]
    assert sleeps == [120.0, 120.0]


async def test_async_401_renews_once_then_fails(
    make_async_hook: Callable[..., Any], service: FakeService
) -> None:
    service.on("/v1/logs/batch/urls", Reply.json({"detail": "expired"}, 401), PENDING)
    hook = make_async_hook()

    await hook.get_batch_files("t")
    service.on("/v1/logs/batch/urls", Reply.json({"detail": "nope"}, 401))
    with pytest.raises(AuthenticationError):
        await hook.get_batch_files("t")

    assert len(service.token_requests) == 3


async def test_async_errors_match_the_sync_ones(
    make_async_hook: Callable[..., Any], service: FakeService, sleeps: list[float]
) -> None:
    service.on(
        "/v1/logs/batch/urls",
        Reply(503, b"", {"Retry-After": "3"}),
        requests.ConnectionError("reset"),
        Reply.json({"statusCode": 429, "body": {"error": "Rate limit exceeded"}}, 429),
    )

    with pytest.raises(QuotaExhaustedError, match="resets at 00:00 UTC"):
        await make_async_hook().get_batch_files("t")

    assert sleeps == [3.0, 1.5]


async def test_async_network_failures_become_service_errors(
    make_async_hook: Callable[..., Any], service: FakeService
) -> None:
    service.on("/v1/logs/batch/urls", requests.Timeout("slow"))

    with pytest.raises(ServiceError, match=r"timed out after 60 s \(extra `timeout`\)"):
        await make_async_hook(max_retries=1).get_batch_files("t")

    assert len(service.api_requests) == 2


async def test_async_token_refusal_names_the_setting(
    make_async_hook: Callable[..., Any], service: FakeService
) -> None:
    service.token_replies = [Reply.json({"error": "invalid_scope"}, 400)]

    with pytest.raises(AuthenticationError, match="extra `scope`"):
        await make_async_hook().get_batch_files("t")


async def test_async_malformed_reply_is_a_protocol_error(
    make_async_hook: Callable[..., Any], service: FakeService
) -> None:
    service.on("/v1/logs/batch/urls", Reply(200, b'{"presigned_urls": ['))

    with pytest.raises(ProtocolError):
        await make_async_hook().get_batch_files("t")


async def test_sealing_works_across_sync_and_async_hooks(
    make_hook: Callable[..., Any], make_async_hook: Callable[..., Any]
) -> None:
    sealed = make_hook().seal("batch-secret-token")
    hook = make_async_hook()

    assert await hook.aunseal(sealed) == "batch-secret-token"
    assert hook.unseal(await hook.aseal("x")) == "x"
    with pytest.raises(InvalidParameterError):
        await hook.aunseal(sealed[:-4] + "AAAA")


async def test_connection_is_read_without_blocking_the_loop(
    make_async_hook: Callable[..., Any], make_conn: Callable[..., str]
) -> None:
    hook = make_async_hook(make_conn("async_conn", extra={"timeout": 9}))

    settings = await hook.get_settings()

    assert (settings.conn_id, settings.timeout_s) == ("async_conn", 9.0)


async def test_connection_is_read_in_a_thread_without_an_async_getter(
    make_async_hook: Callable[..., Any],
    make_conn: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow_provider_centralmon._compat import BaseHook

    monkeypatch.delattr(BaseHook, "aget_connection", raising=False)
    hook = make_async_hook(make_conn("thread_conn"))

    settings = await hook.get_settings()

    assert settings.conn_id == "thread_conn"


async def test_async_scroll_reads_a_v2_reply_whose_meta_is_null(
    make_async_hook: Callable[..., Any], service: FakeService
) -> None:
    service.on(
        "/v2/logs/scroll",
        Reply.json({"data": {"logs": [{"n": 1}], "scroll_id": "c1", "has_more": True}}),
        Reply.json({"data": {"logs": [], "has_more": False}, "meta": None}),
    )

    pages = [page async for page in make_async_hook().scroll(SEARCH)]

    assert [r["n"] for p in pages for r in p.records] == [1]


async def test_async_scroll_reply_without_logs_is_a_protocol_error(
    make_async_hook: Callable[..., Any], service: FakeService
) -> None:
    service.on("/v2/logs/scroll", Reply.json({"items": [{"n": 1}], "has_more": False}))

    with pytest.raises(ProtocolError, match="without a logs list"):
        [page async for page in make_async_hook().scroll(SEARCH)]


async def test_async_fallback_route_is_remembered_only_when_it_works(
    make_async_hook: Callable[..., Any], service: FakeService
) -> None:
    service.on("/v1/logs/batch/status", Reply.json({"message": "Forbidden"}, 403), PENDING)

    # The fallback's 403 does not hide the 404 of the documented route.
    with pytest.raises(CentralMonitoringError) as caught:
        await make_async_hook().get_batch_files("t")
    assert caught.value.http_status == 404
    await make_async_hook().get_batch_files("t")
    await make_async_hook().get_batch_files("t")

    assert [r.path.rsplit("/", 1)[1] for r in service.api_requests] == [
        "urls",
        "status",
        "urls",
        "status",
        "status",
    ]


async def test_async_scroll_with_a_quota_of_superscript_digits(
    make_async_hook: Callable[..., Any], service: FakeService
) -> None:
    meta = {"rate_limit": {"daily_remaining": "\u00b3"}}
    service.on(
        "/v2/logs/scroll", Reply.json({"data": {"logs": [], "has_more": False}, "meta": meta})
    )

    [page] = [page async for page in make_async_hook().scroll(SEARCH)]

    assert page.meta.daily_remaining is None


async def test_async_reply_nested_too_deep_is_a_protocol_error(
    make_async_hook: Callable[..., Any], service: FakeService
) -> None:
    service.on("/v1/logs/batch/urls", Reply(200, b"[" * 5000 + b"]" * 5000))

    with pytest.raises(ProtocolError, match="malformed"):
        await make_async_hook().get_batch_files("t")
