from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hook_fakes import API, Exchange, FakeService, ManualClock, Reply

from airflow_provider_centralmon.exceptions import (
    BatchError,
    CentralMonitoringError,
    InvalidParameterError,
    ProtocolError,
    ScrollExpiredError,
    ServiceError,
)
from airflow_provider_centralmon.hooks.centralmon import PresignedUrlExpiredError

SEARCH = {"application": "atr", "time_range": "now-15m/m"}
FILES = "https://cm-api-logs-prod.s3.amazonaws.com"


def scroll_pages(*pages: tuple[list[dict[str, Any]], str | None, bool]) -> list[Reply]:
    return [
        Reply.json({"logs": logs, "scroll_id": scroll_id, "has_more": has_more})
        for logs, scroll_id, has_more in pages
    ]


def test_scroll_follows_the_newest_cursor_until_has_more_is_false(
    make_hook: Callable[..., Any], service: FakeService
) -> None:
    service.on(
        "/v2/logs/scroll",
        *scroll_pages(
            ([{"n": 1}, {"n": 2}], "c1", True), ([{"n": 3}], "c2", True), ([], "c3", False)
        ),
    )

    pages = list(make_hook().scroll(SEARCH))

    assert [p.number for p in pages] == [1, 2, 3]
    assert [r["n"] for p in pages for r in p.records] == [1, 2, 3]
    assert [p.has_more for p in pages] == [True, True, False]
    assert [r.json() for r in service.api_requests] == [
        SEARCH,
        {"scroll_id": "c1"},
        {"scroll_id": "c2"},
    ]
    assert pages[0].meta.records == 2


def test_scroll_reads_a_v2_envelope(make_hook: Callable[..., Any], service: FakeService) -> None:
    service.on(
        "/v2/logs/scroll",
        Reply.json(
            {
                "data": {"logs": [{"n": 1}], "scroll_id": "c1", "has_more": False},
                "meta": {"rate_limit": {"daily_remaining": 12}, "request_id": "q-1"},
            }
        ),
    )
    hook = make_hook()

    [page] = list(hook.scroll(SEARCH))

    assert (page.records, page.meta.request_id, page.meta.daily_remaining) == (
        [{"n": 1}],
        "q-1",
        12,
    )
    assert hook.last_quota is not None
    assert hook.last_quota.remaining == 12


def test_scroll_stops_at_max_pages(make_hook: Callable[..., Any], service: FakeService) -> None:
    service.on(
        "/v2/logs/scroll", lambda e: Reply.json({"logs": [{}], "scroll_id": "c", "has_more": True})
    )

    pages = list(make_hook().scroll(SEARCH, max_pages=3))

    assert len(pages) == 3
    assert pages[-1].has_more
    assert len(service.api_requests) == 3


def test_a_cursor_repeating_with_no_records_is_stopped(
    make_hook: Callable[..., Any], service: FakeService
) -> None:
    service.on("/v2/logs/scroll", *scroll_pages(([{"n": 1}], "same", True), ([], "same", True)))

    with pytest.raises(ProtocolError, match="stuck cursor"):
        list(make_hook().scroll(SEARCH))


def test_endless_empty_pages_are_stopped(
    make_hook: Callable[..., Any], service: FakeService
) -> None:
    counter = iter(range(1000))
    service.on(
        "/v2/logs/scroll",
        lambda e: Reply.json({"logs": [], "scroll_id": f"c{next(counter)}", "has_more": True}),
    )

    with pytest.raises(ProtocolError, match="5 empty pages in a row"):
        list(make_hook().scroll(SEARCH))

    assert len(service.api_requests) == 5


def test_has_more_without_cursor_is_a_protocol_error(
    make_hook: Callable[..., Any], service: FakeService
) -> None:
    service.on("/v2/logs/scroll", *scroll_pages(([{"n": 1}], None, True)))

    with pytest.raises(ProtocolError, match="without a scroll_id"):
        list(make_hook().scroll(SEARCH))


def test_a_first_body_function_is_built_for_each_attempt_once_the_token_is_there(
    make_hook: Callable[..., Any], service: FakeService, sleeps: list[float]
) -> None:
    busy = Reply(503, b"<html>busy</html>", {"Retry-After": "120"})
    service.on("/v2/logs/scroll", busy, busy, *scroll_pages(([{"n": 1}], "c1", False)))
    tokens_when_built: list[int] = []

    def first_body() -> dict[str, Any]:
        tokens_when_built.append(len(service.token_requests))
        return {**SEARCH, "attempt": len(tokens_when_built)}

    pages = list(make_hook().scroll(first_body))

    assert [r["n"] for p in pages for r in p.records] == [1]
    assert tokens_when_built == [1, 1, 1]
    assert [r.json()["attempt"] for r in service.api_requests] == [1, 2, 3]
    assert sleeps == [120.0, 120.0]


def test_a_first_body_function_is_built_again_after_a_401(
    make_hook: Callable[..., Any], service: FakeService
) -> None:
    service.on(
        "/v2/logs/scroll",
        Reply.json({"detail": "expired"}, 401),
        *scroll_pages(([{"n": 1}], "c1", True), ([], "c2", False)),
    )
    built: list[int] = []

    def first_body() -> dict[str, Any]:
        built.append(len(service.token_requests))
        return {**SEARCH, "attempt": len(built)}

    list(make_hook().scroll(first_body))

    assert built == [1, 2]
    assert [r.json() for r in service.api_requests] == [
        {**SEARCH, "attempt": 1},
        {**SEARCH, "attempt": 2},
        {"scroll_id": "c1"},
    ]


def test_a_first_body_function_must_return_a_mapping(make_hook: Callable[..., Any]) -> None:
    with pytest.raises(InvalidParameterError, match="must return a mapping"):
        list(make_hook().scroll(lambda: ["application", "atr"]))


def test_submit_batch_builds_a_body_function_for_each_attempt(
    make_hook: Callable[..., Any], service: FakeService
) -> None:
    service.on(
        "/v1/logs/batch",
        Reply(502, b""),
        Reply.json({"token": "batch-secret-token", "daily_requests_remaining": 49}),
    )
    built: list[int] = []

    def body() -> dict[str, Any]:
        built.append(len(built) + 1)
        return {**SEARCH, "attempt": built[-1]}

    make_hook().submit_batch(body)

    assert [r.json()["attempt"] for r in service.api_requests] == [1, 2]


def test_a_404_on_the_first_call_points_to_the_routes_but_not_on_a_continuation(
    make_hook: Callable[..., Any], service: FakeService
) -> None:
    gone = Reply.json({"detail": "scroll_id is unknown or expired"}, 404)
    service.on("/v2/logs/scroll", *scroll_pages(([{"n": 1}], "cursor-secret-1", True)), gone)

    with pytest.raises(ScrollExpiredError) as raised:
        list(make_hook().scroll(SEARCH))
    service.on("/v2/logs/scroll", Reply.json({"detail": "Not Found"}, 404))
    with pytest.raises(InvalidParameterError, match="Check extra `routes`"):
        list(make_hook().scroll(SEARCH))

    message = str(raised.value)
    assert "answered 404 after 1 pages: the scroll cursor expired or moved on" in message
    assert "cursor-secret-1" not in message
    # A new scroll can succeed where the old cursor cannot: a rerun or the next poll.
    assert isinstance(raised.value, ServiceError)
    assert raised.value.retryable


def test_scroll_rejects_a_bad_page_limit(make_hook: Callable[..., Any]) -> None:
    with pytest.raises(InvalidParameterError, match="max_pages"):
        list(make_hook().scroll(SEARCH, max_pages=0))


def test_submit_batch_returns_a_token_hidden_from_repr(
    make_hook: Callable[..., Any], service: FakeService
) -> None:
    service.on(
        "/v1/logs/batch",
        Reply.json(
            {"token": "batch-secret-token", "daily_requests_remaining": 49, "logs": [SEARCH]}
        ),
    )

    submission = make_hook().submit_batch(SEARCH)

    assert submission.batch_token == "batch-secret-token"
    assert (submission.daily_remaining, submission.echo) == (49, [SEARCH])
    assert "batch-secret-token" not in repr(submission)
    assert service.api_requests[0].json() == SEARCH


def test_submit_batch_without_token_is_a_batch_error(
    make_hook: Callable[..., Any], service: FakeService
) -> None:
    service.on("/v1/logs/batch", Reply.json({"daily_requests_remaining": 49}))

    with pytest.raises(BatchError, match="without a token"):
        make_hook().submit_batch(SEARCH)


def urls_reply(*entries: dict[str, Any]) -> Reply:
    return Reply.json({"presigned_urls": list(entries), "daily_requests_remaining": 3})


def test_batch_files_report_readiness_and_url_expiry(
    make_hook: Callable[..., Any], service: FakeService
) -> None:
    service.on(
        "/v1/logs/batch/urls",
        urls_reply(
            {
                "presigned_url": f"{FILES}/a.json?Expires=1796003600&Signature=sig-a",
                "time_range": "a",
                "ready": True,
                "status": "completed",
                "record_count": 100000,
            },
            {
                "presigned_url": (
                    f"{FILES}/b.json?X-Amz-Date=20261130T000000Z&X-Amz-Expires=900"
                    "&X-Amz-Signature=sig-b"
                ),
                "time_range": "b",
                "ready": "true",
                "status": "COMPLETED",
            },
        ),
    )

    status = make_hook().get_batch_files("batch-secret-token")

    assert status.ready
    assert not status.failed
    first, second = status.files
    assert first.expires_at == datetime.fromtimestamp(1796003600, tz=UTC)
    assert second.expires_at == datetime(2026, 11, 30, 0, 15, tzinfo=UTC)
    assert (first.record_count, second.record_count, second.status) == (100000, None, "completed")
    assert "sig-a" not in repr(status)
    assert service.api_requests[0].json() == {"token": "batch-secret-token"}
    assert status.meta.records == 2


@pytest.mark.parametrize(
    ("entries", "ready", "failed"),
    [
        ([{"ready": False, "status": "pending"}], False, False),
        (
            [{"ready": True, "status": "completed"}, {"ready": False, "status": "running"}],
            False,
            False,
        ),
        ([{"ready": False, "status": "FAILED"}], False, True),
        ([{"ready": True, "status": "expired"}], False, True),
        ([], False, False),
    ],
)
def test_batch_readiness_needs_every_file_ready_and_completed(
    make_hook: Callable[..., Any],
    service: FakeService,
    entries: list[dict[str, Any]],
    ready: bool,
    failed: bool,
) -> None:
    service.on("/v1/logs/batch/urls", urls_reply(*entries))

    status = make_hook().get_batch_files("t")

    assert (status.ready, status.failed) == (ready, failed)


def test_urls_route_falls_back_to_status_route_once_and_remembers_it(
    make_hook: Callable[..., Any], service: FakeService, logs: Callable[[], str]
) -> None:
    service.on("/v1/logs/batch/status", urls_reply({"ready": False, "status": "pending"}))

    make_hook().get_batch_files("t")
    make_hook().get_batch_files("t")

    assert [r.path for r in service.api_requests] == [
        "/v1/logs/batch/urls",
        "/v1/logs/batch/status",
        "/v1/logs/batch/status",
    ]
    assert "/v1/logs/batch/status works instead" in logs()


def test_overridden_urls_route_has_no_fallback(
    make_hook: Callable[..., Any], make_conn: Callable[..., str], service: FakeService
) -> None:
    conn_id = make_conn(extra={"routes": {"batch_urls": "/v1/logs/batch/urls"}})

    with pytest.raises(InvalidParameterError, match="route not found"):
        make_hook(conn_id).get_batch_files("t")

    assert len(service.api_requests) == 1


def hits(count: int) -> list[dict[str, Any]]:
    return [
        {"_index": "logs", "_id": str(i), "_source": {"n": i, "msg": 'a "},] b'}}
        for i in range(count)
    ]


def test_batch_file_is_downloaded_without_authorization(
    make_hook: Callable[..., Any], service: FakeService, logs: Callable[[], str]
) -> None:
    seen: list[Exchange] = []

    def s3(exchange: Exchange) -> Reply:
        seen.append(exchange)
        return Reply(200, json.dumps(hits(3)).encode())

    service.on("/a.json", s3)
    url = f"{API}/a.json?X-Amz-Signature=sig-secret"

    records = list(make_hook().iter_batch_file(url))

    assert [r["_source"]["n"] for r in records] == [0, 1, 2]
    assert seen[0].method == "GET"
    assert "authorization" not in seen[0].headers
    assert service.token_requests == []
    text = logs()
    assert "GET https://api.cm.test/a.json -> 200 in " in text
    assert "sig-secret" not in text


def test_expired_presigned_url_raises_its_own_error(
    make_hook: Callable[..., Any], service: FakeService, clock: ManualClock
) -> None:
    body = b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
    service.on("/a.json", Reply(403, body, {"content-type": "application/xml"}))
    url = f"{API}/a.json?Expires={int(clock.now) - 5}&Signature=sig-secret"

    with pytest.raises(PresignedUrlExpiredError) as caught:
        list(make_hook().iter_batch_file(url))

    assert isinstance(caught.value, BatchError)
    assert caught.value.expired_at == datetime.fromtimestamp(int(clock.now) - 5, tz=UTC)
    assert "sig-secret" not in str(caught.value)
    assert "fresh URLs" in str(caught.value)


def test_other_download_refusals_are_batch_errors(
    make_hook: Callable[..., Any], service: FakeService, clock: ManualClock
) -> None:
    service.on("/a.json", Reply(403, b"<Error><Code>AccessDenied</Code></Error>"))
    url = f"{API}/a.json?Expires={int(clock.now) + 600}&Signature=sig-secret"

    with pytest.raises(BatchError) as caught:
        list(make_hook().iter_batch_file(url))

    assert not isinstance(caught.value, PresignedUrlExpiredError)


def test_truncated_batch_file_is_a_protocol_error(
    make_hook: Callable[..., Any], service: FakeService
) -> None:
    service.on("/a.json", Reply(200, json.dumps(hits(3)).encode()[:-40]))

    received: list[dict[str, Any]] = []
    with pytest.raises(ProtocolError, match="ended before its JSON array was complete"):
        received.extend(make_hook().iter_batch_file(f"{API}/a.json?sig=x"))


def test_download_over_plain_http_is_refused_off_loopback(make_hook: Callable[..., Any]) -> None:
    with pytest.raises(InvalidParameterError, match="only https") as caught:
        list(make_hook().iter_batch_file("http://bucket.example.com/a.json?sig=secret"))

    assert "secret" not in str(caught.value)


def test_sealed_token_round_trips_and_hides_the_value(
    make_hook: Callable[..., Any], make_conn: Callable[..., str]
) -> None:
    hook = make_hook()

    sealed = hook.seal("batch-secret-token")

    assert "batch-secret-token" not in sealed
    assert hook.unseal(sealed) == "batch-secret-token"
    assert make_hook().unseal(sealed) == "batch-secret-token"


@pytest.mark.parametrize(
    "fields", [{"password": "another-client-secret"}, {"login": "another-client-id"}]
)
def test_value_sealed_with_other_credentials_is_refused(
    make_hook: Callable[..., Any], make_conn: Callable[..., str], fields: dict[str, str]
) -> None:
    sealed = make_hook().seal("batch-secret-token")
    other = make_hook(make_conn("other", **fields))

    with pytest.raises(InvalidParameterError, match="connection 'other'"):
        other.unseal(sealed)


@pytest.mark.parametrize("value", ["batch-secret-token", "cmseal1:garbage", ""])
def test_unsealing_a_value_that_was_not_sealed_is_refused(
    make_hook: Callable[..., Any], value: str
) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        make_hook().unseal(value)

    assert "batch-secret-token" not in str(caught.value)


@pytest.mark.parametrize("meta", [None, "absent", [], "v2", {"request_id": 7}])
def test_v2_scroll_reply_with_unusable_meta_keeps_its_records(
    make_hook: Callable[..., Any], service: FakeService, meta: Any
) -> None:
    def page(logs: list[dict[str, Any]], scroll_id: str, has_more: bool) -> Reply:
        body: dict[str, Any] = {
            "data": {"logs": logs, "scroll_id": scroll_id, "has_more": has_more}
        }
        if meta != "absent":
            body["meta"] = meta
        return Reply.json(body)

    service.on("/v2/logs/scroll", page([{"n": 1}, {"n": 2}], "c1", True), page([], "c2", False))

    pages = list(make_hook().scroll(SEARCH))

    assert [r["n"] for p in pages for r in p.records] == [1, 2]
    assert [p.has_more for p in pages] == [True, False]


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ({"scroll_id": "c1", "has_more": True}, "without a logs list"),
        ({"logs": None, "scroll_id": "c1", "has_more": True}, "without a logs list"),
        ({"logs": {"n": 1}, "scroll_id": "c1", "has_more": False}, "not a list of objects"),
        ({"results": [{"n": 1}]}, "without a logs list"),
        ({"logs": [{"n": 1}], "scroll_id": "c1", "has_more": "maybe"}, "has_more .a str"),
        ({"logs": [{"n": 1}], "scroll_id": "c1", "has_more": 2}, "has_more .a int"),
        ({"logs": [{"n": 1}], "next": "c1"}, "neither has_more nor a scroll_id"),
    ],
)
def test_scroll_reply_that_cannot_be_read_stops_with_an_error(
    make_hook: Callable[..., Any],
    service: FakeService,
    reply: dict[str, Any],
    message: str,
) -> None:
    service.on("/v2/logs/scroll", Reply.json(reply))

    with pytest.raises(ProtocolError, match=message):
        list(make_hook().scroll(SEARCH))


@pytest.mark.parametrize(
    ("has_more", "pages"), [("TRUE", 2), (" false ", 1), (1, 2), (0, 1), (None, 2)]
)
def test_scroll_reads_has_more_spelled_as_text_number_or_left_out(
    make_hook: Callable[..., Any], service: FakeService, has_more: Any, pages: int
) -> None:
    service.on(
        "/v2/logs/scroll",
        Reply.json({"logs": [{"n": 1}], "scroll_id": "c1", "has_more": has_more}),
        Reply.json({"logs": [], "scroll_id": "c2", "has_more": False}),
    )

    assert len(list(make_hook().scroll(SEARCH))) == pages


def test_empty_logs_of_null_end_a_scroll_only_when_has_more_is_false(
    make_hook: Callable[..., Any], service: FakeService
) -> None:
    service.on("/v2/logs/scroll", Reply.json({"logs": None, "has_more": False}))

    [page] = list(make_hook().scroll(SEARCH))

    assert (page.records, page.has_more) == ([], False)


@pytest.mark.parametrize(
    "reply",
    [{"daily_requests_remaining": 3}, {"presigned_urls": None}, {"data": {"status": "ok"}}],
)
def test_urls_reply_without_presigned_urls_is_a_protocol_error(
    make_hook: Callable[..., Any], service: FakeService, reply: dict[str, Any]
) -> None:
    service.on("/v1/logs/batch/urls", Reply.json(reply))

    with pytest.raises(ProtocolError, match="without a list of presigned_urls"):
        make_hook().get_batch_files("t")


@pytest.mark.parametrize("status", [403, 500, 400])
def test_a_fallback_that_fails_is_not_remembered(
    make_hook: Callable[..., Any], service: FakeService, status: int
) -> None:
    def urls(exchange: Exchange) -> Reply:
        # Only the unknown export is "not found"; the route itself works.
        if exchange.json()["token"] == "unknown":
            return Reply.json({"detail": "batch not found"}, 404)
        return urls_reply({"ready": False, "status": "pending"})

    service.on("/v1/logs/batch/urls", urls)
    service.on("/v1/logs/batch/status", Reply.json({"message": "Forbidden"}, status))

    with pytest.raises(CentralMonitoringError):
        make_hook(max_retries=0).get_batch_files("unknown")
    status_reply = make_hook().get_batch_files("known")

    assert status_reply.meta.route == "/v1/logs/batch/urls"
    assert [r.path for r in service.api_requests] == [
        "/v1/logs/batch/urls",
        "/v1/logs/batch/status",
        "/v1/logs/batch/urls",
    ]


@pytest.mark.parametrize("status", [403, 500])
def test_a_failing_fallback_leaves_the_404_of_the_documented_route(
    make_hook: Callable[..., Any], service: FakeService, status: int
) -> None:
    # A gateway answers 403 for a path it does not know; the export's 404 must not hide
    # behind it, since a batch export that answers 404 is one the service forgot.
    service.on("/v1/logs/batch/urls", Reply.json({"detail": "batch not found"}, 404))
    service.on("/v1/logs/batch/status", Reply.json({"message": "Forbidden"}, status))

    with pytest.raises(CentralMonitoringError) as caught:
        make_hook(max_retries=0).get_batch_files("forgotten")

    assert caught.value.http_status == 404
    assert "/v1/logs/batch/urls" in str(caught.value)


def test_a_remembered_fallback_never_overrides_an_explicit_route(
    make_hook: Callable[..., Any], make_conn: Callable[..., str], service: FakeService
) -> None:
    service.on("/v1/logs/batch/status", urls_reply({"ready": False, "status": "pending"}))
    service.on("/custom/urls", urls_reply({"ready": False, "status": "pending"}))
    make_hook().get_batch_files("t")
    explicit = make_conn("explicit", extra={"routes": {"batch_urls": "/custom/urls"}})

    status = make_hook(explicit).get_batch_files("t")

    assert status.meta.route == "/custom/urls"
    assert service.api_requests[-1].path == "/custom/urls"


def test_a_remembered_fallback_belongs_to_its_api_host(
    make_hook: Callable[..., Any], make_conn: Callable[..., str], service: FakeService
) -> None:
    service.on("/v1/logs/batch/status", urls_reply({"ready": False, "status": "pending"}))
    make_hook().get_batch_files("t")
    other_host = make_conn("other", host="https://other.cm.test")

    make_hook(other_host).get_batch_files("t")

    assert [e.url for e in service.exchanges if "other" in e.url] == [
        "https://other.cm.test/v1/logs/batch/urls",
        "https://other.cm.test/v1/logs/batch/status",
    ]
