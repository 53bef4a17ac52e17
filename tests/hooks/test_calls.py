from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import pytest
import requests
from hook_fakes import FakeService, ManualClock, Reply

from airflow_provider_centralmon.exceptions import (
    AuthenticationError,
    BadRequestError,
    InvalidParameterError,
    PermissionDeniedError,
    ProtocolError,
    QuotaExhaustedError,
    ServiceError,
)

V1_OK = Reply.json({"result": 7, "daily_requests_remaining": 41, "new_field": True})


def test_thousand_calls_in_one_process_need_one_token(
    make_hook: Callable[..., Any], service: FakeService
) -> None:
    service.on("/v1/query", V1_OK)
    first, second = make_hook(), make_hook()

    for _ in range(500):
        first.query({"domain_name": "d"})
        second.query({"domain_name": "d"})

    assert len(service.token_requests) == 1
    assert len(service.api_requests) == 1000
    assert {r.headers["authorization"] for r in service.api_requests} == {"Bearer token-1-abcdefgh"}


def test_ten_threads_with_their_own_hooks_at_expiry_fetch_one_token(
    make_hook: Callable[..., Any], service: FakeService, clock: ManualClock
) -> None:
    service.on("/v1/query", V1_OK)
    make_hook().query({})
    clock.advance(3599)
    hooks = [make_hook() for _ in range(10)]
    barrier = threading.Barrier(10)

    def call(hook: Any) -> None:
        barrier.wait()
        hook.query({})

    threads = [threading.Thread(target=call, args=(hook,)) for hook in hooks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(service.token_requests) == 2
    assert len(service.api_requests) == 11


def test_token_is_renewed_ahead_of_expiry(
    make_hook: Callable[..., Any], service: FakeService, clock: ManualClock
) -> None:
    service.on("/v1/query", V1_OK)
    hook = make_hook()

    hook.query({})
    clock.advance(2699)
    hook.query({})
    clock.advance(1)
    hook.query({})

    assert [r.headers["authorization"][-16:] for r in service.api_requests] == [
        "token-1-abcdefgh",
        "token-1-abcdefgh",
        "token-2-abcdefgh",
    ]


def test_a_401_renews_the_token_and_retries_once(
    make_hook: Callable[..., Any], service: FakeService
) -> None:
    service.on("/v1/query", Reply.json({"status_code": 401, "detail": "expired"}, 401), V1_OK)

    reply = make_hook().query({})

    assert reply.payload["result"] == 7
    assert len(service.token_requests) == 2
    assert [r.headers["authorization"][-16:] for r in service.api_requests] == [
        "token-1-abcdefgh",
        "token-2-abcdefgh",
    ]


def test_a_second_401_is_an_authentication_error(
    make_hook: Callable[..., Any], service: FakeService
) -> None:
    service.on("/v1/query", Reply.json({"status_code": 401, "detail": "Unauthorized"}, 401))

    with pytest.raises(AuthenticationError, match="answered 401 twice") as caught:
        make_hook().query({})

    assert caught.value.http_status == 401
    assert len(service.api_requests) == 2
    assert len(service.token_requests) == 2


def test_v1_envelope_is_read(make_hook: Callable[..., Any], service: FakeService) -> None:
    service.on("/v1/query", Reply(200, V1_OK.content, {"X-Request-Id": "hdr-1"}))
    hook = make_hook()

    reply = hook.query({})

    assert reply.payload["result"] == 7
    assert (reply.meta.daily_remaining, reply.meta.request_id) == (41, "hdr-1")
    assert hook.last_quota is not None
    assert (hook.last_quota.route, hook.last_quota.remaining) == ("/v1/query", 41)
    assert hook.last_quota.resets_at == datetime(2026, 12, 1, tzinfo=UTC)


def test_v2_envelope_is_read_on_any_route(
    make_hook: Callable[..., Any], service: FakeService
) -> None:
    service.on(
        "/v1/query",
        Reply.json(
            {
                "data": {"tickets": 3},
                "meta": {
                    "api_version": "v2",
                    "rate_limit": {"daily_remaining": 99, "limit": 100},
                    "request_id": "req-v2",
                    "extra": "tolerated",
                },
            },
            **{"x-request-id": "header-loses"},
        ),
    )

    reply = make_hook().query({})

    assert reply.payload == {"tickets": 3}
    assert (reply.meta.daily_remaining, reply.meta.request_id) == (99, "req-v2")
    assert reply.meta.http_status == 200


def test_one_info_line_per_call(
    make_hook: Callable[..., Any], service: FakeService, logs: Callable[[], str]
) -> None:
    service.on(
        "/v1/query",
        Reply(200, V1_OK.content, {"x-request-id": "r-1"}),
        Reply(200, V1_OK.content, {"x-request-id": "r-2"}),
    )
    hook = make_hook()

    hook.query({})
    hook.query({})

    # Each sink (stdlib logging, Airflow's console) may show a line; distinct lines count calls.
    found = re.findall(r"POST /v1/query -> 200 in [0-9.]+ s, .*?calls left today: 41", logs())
    assert len(set(found)) == 2
    for request_id in ("r-1", "r-2"):
        assert any(f"records: -, request id: {request_id}," in line for line in found)


@pytest.mark.parametrize(
    ("reply", "error", "message"),
    [
        (
            Reply.json({"status_code": 400, "detail": "unknown application 'x'"}, 400),
            BadRequestError,
            "rejected the request: unknown application 'x'",
        ),
        (
            Reply.json({"detail": [{"loc": ["body"], "msg": "field required"}]}, 422),
            BadRequestError,
            "field required",
        ),
        (Reply.json({"message": "Forbidden"}, 403), PermissionDeniedError, "Forbidden"),
        (Reply(403, b""), PermissionDeniedError, "empty body"),
        (
            Reply.json({"error": "access_denied", "error_description": "route"}, 403),
            PermissionDeniedError,
            "access_denied: route",
        ),
        (
            Reply.json({"statusCode": 400, "body": '{"error": "bad time_range"}'}, 400),
            BadRequestError,
            "bad time_range",
        ),
        (
            Reply(
                404, b"<html><body><h1>Not here</h1></body></html>", {"content-type": "text/html"}
            ),
            InvalidParameterError,
            "HTML page: Not here",
        ),
    ],
)
def test_each_error_shape_gives_its_exception_and_a_readable_line(
    make_hook: Callable[..., Any],
    service: FakeService,
    reply: Reply,
    error: type[Exception],
    message: str,
) -> None:
    service.on("/v1/query", reply)

    with pytest.raises(error) as caught:
        make_hook().query({})

    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert len(service.api_requests) == 1


def test_bad_request_keeps_the_service_detail(
    make_hook: Callable[..., Any], service: FakeService
) -> None:
    service.on("/v1/query", Reply.json({"status_code": 400, "detail": "bad size"}, 400))

    with pytest.raises(BadRequestError) as caught:
        make_hook().query({})

    assert (caught.value.detail, caught.value.http_status) == ("bad size", 400)


def test_long_html_gateway_page_is_summarised_and_truncated(
    make_hook: Callable[..., Any], service: FakeService
) -> None:
    page = b"<html><head><style>p{}</style></head><body>" + b"<p>word</p>" * 200 + b"</body></html>"
    service.on("/v1/query", Reply(502, page, {"content-type": "text/html"}))

    with pytest.raises(ServiceError) as caught:
        make_hook(max_retries=0).query({})

    text = str(caught.value)
    assert text.startswith("/v1/query answered 502: HTML page: word word")
    assert text.endswith("...")
    assert "<" not in text
    assert len(text) < 300


def test_quota_exhaustion_is_not_retried_and_says_when_it_resets(
    make_hook: Callable[..., Any], service: FakeService, clock: ManualClock
) -> None:
    service.on(
        "/v1/query",
        Reply.json({"result": 1, "daily_requests_remaining": 1}),
        Reply.json({"statusCode": 429, "body": {"error": "Rate limit exceeded"}}, 429),
    )
    hook = make_hook()
    hook.query({})

    with pytest.raises(QuotaExhaustedError) as caught:
        hook.query({})

    error = caught.value
    assert error.remaining == 1
    assert error.resets_at == datetime(2026, 12, 1, tzinfo=UTC)
    assert "Rate limit exceeded" in str(error)
    assert "last reported remaining: 1" in str(error)
    assert "resets at 00:00 UTC, next at 2026-12-01 00:00 UTC" in str(error)
    assert len(service.api_requests) == 2
    assert hook.last_quota is not None
    assert hook.last_quota.remaining == 0


def test_5xx_and_network_failures_are_retried_with_backoff(
    make_hook: Callable[..., Any], service: FakeService, sleeps: list[float]
) -> None:
    service.on(
        "/v1/query",
        Reply(503, b""),
        requests.ConnectionError("reset"),
        requests.ReadTimeout("slow"),
        Reply(504, b"Gateway Timeout"),
        V1_OK,
    )

    reply = make_hook().query({})

    assert reply.payload["result"] == 7
    assert sleeps == [0.75, 1.5, 3.0, 6.0]


def test_retries_are_bounded(
    make_hook: Callable[..., Any], service: FakeService, sleeps: list[float]
) -> None:
    service.on("/v1/query", requests.ConnectionError("down"))

    with pytest.raises(ServiceError, match="failed: ConnectionError") as caught:
        make_hook(max_retries=3).query({})

    assert caught.value.retryable
    assert len(service.api_requests) == 4
    assert len(sleeps) == 3


def test_timeout_message_names_the_setting(
    make_hook: Callable[..., Any], service: FakeService
) -> None:
    service.on("/v1/query", requests.ReadTimeout("slow"))

    with pytest.raises(ServiceError, match=r"timed out after 60 s \(extra `timeout`\)"):
        make_hook(max_retries=0).query({})


@pytest.mark.parametrize(
    ("retry_after", "expected_s"),
    # A superscript passes str.isdigit() but is no number: the backoff applies.
    [("7", 7.0), ("100000", 120.0), ("soon", 0.75), ("²", 0.75)],
)
def test_retry_after_is_honoured_and_capped(
    make_hook: Callable[..., Any],
    service: FakeService,
    sleeps: list[float],
    retry_after: str,
    expected_s: float,
) -> None:
    service.on("/v1/query", Reply(503, b"", {"Retry-After": retry_after}), V1_OK)

    make_hook().query({})

    assert sleeps == [expected_s]


def test_retry_after_as_http_date(
    make_hook: Callable[..., Any], service: FakeService, sleeps: list[float], clock: ManualClock
) -> None:
    when = datetime.fromtimestamp(clock.now + 30, tz=UTC)
    service.on(
        "/v1/query", Reply(503, b"", {"Retry-After": format_datetime(when, usegmt=True)}), V1_OK
    )

    make_hook().query({})

    assert sleeps == [30.0]


@pytest.mark.parametrize("status", [400, 403, 429])
def test_client_errors_are_never_retried(
    make_hook: Callable[..., Any], service: FakeService, sleeps: list[float], status: int
) -> None:
    service.on("/v1/query", Reply(status, b"{}", {"Retry-After": "1"}))

    with pytest.raises((BadRequestError, PermissionDeniedError, QuotaExhaustedError)):
        make_hook().query({})

    assert (len(service.api_requests), sleeps) == (1, [])


@pytest.mark.parametrize("content", [b"", b'{"result": ', b"<html>oops</html>"])
def test_malformed_success_is_a_protocol_error_without_retry(
    make_hook: Callable[..., Any], service: FakeService, content: bytes
) -> None:
    service.on("/v1/query", Reply(200, content))

    with pytest.raises(ProtocolError, match="/v1/query replied with"):
        make_hook().query({})

    assert len(service.api_requests) == 1


def test_extras_never_become_headers(
    make_hook: Callable[..., Any], make_conn: Callable[..., str], service: FakeService
) -> None:
    service.on("/v2/query", V1_OK)
    conn_id = make_conn(extra={"routes": {"query": "/v2/query"}, "timeout": 5, "scope": "s"})

    make_hook(conn_id).query({"a": 1})

    [request] = service.api_requests
    assert request.path == "/v2/query"
    assert request.json() == {"a": 1}
    assert set(request.headers) <= {
        "authorization",
        "content-type",
        "accept",
        "content-length",
        "user-agent",
        "accept-encoding",
        "connection",
    }


def test_max_retries_must_be_a_count(make_conn: Callable[..., str]) -> None:
    from airflow_provider_centralmon.hooks.centralmon import CentralMonitoringHook

    with pytest.raises(InvalidParameterError, match="max_retries"):
        CentralMonitoringHook(make_conn(), max_retries=-1)


@pytest.mark.parametrize("meta", [None, "absent", "v2", ["x"]])
def test_v2_envelope_without_usable_meta_is_still_unwrapped(
    make_hook: Callable[..., Any], service: FakeService, meta: Any
) -> None:
    body: dict[str, Any] = {"data": {"tickets": 3}}
    if meta != "absent":
        body["meta"] = meta
    service.on("/v1/query", Reply.json(body, **{"x-request-id": "hdr-2"}))

    reply = make_hook().query({})

    assert reply.payload == {"tickets": 3}
    assert (reply.meta.request_id, reply.meta.daily_remaining) == ("hdr-2", None)


def test_v1_payload_with_a_data_field_is_not_unwrapped(
    make_hook: Callable[..., Any], service: FakeService
) -> None:
    body = {"data": [1, 2], "daily_requests_remaining": 5}
    service.on("/v1/query", Reply.json(body))

    reply = make_hook().query({})

    assert (reply.payload, reply.meta.daily_remaining) == (body, 5)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("piece", ["<script>", "<title>", "<style a=1>", "<", "<a href=x", "<!--"])
def test_a_hostile_html_page_is_summarised_in_linear_time(
    make_hook: Callable[..., Any], service: FakeService, piece: str
) -> None:
    # Unclosed tags by the hundred thousand made the tag patterns backtrack quadratically:
    # minutes of CPU, and in a trigger a blocked event loop.
    page = ("<html>" + piece * (1024 * 1024 // len(piece))).encode()
    service.on("/v1/query", Reply(502, page, {"content-type": "text/html"}))

    with pytest.raises(ServiceError, match="answered 502: HTML page") as caught:
        make_hook(max_retries=0).query({})

    assert len(str(caught.value)) < 300


@pytest.mark.parametrize("retry_after", ["\u00b2", "\u0661\u0662", "1" * 5000])
def test_a_retry_after_of_other_digits_is_read_as_unknown_or_capped(
    make_hook: Callable[..., Any], service: FakeService, sleeps: list[float], retry_after: str
) -> None:
    service.on("/v1/query", Reply(503, b"", {"Retry-After": retry_after}), V1_OK)

    make_hook().query({})

    assert sleeps in ([0.75], [120.0])


def test_a_token_endpoint_retry_after_of_superscript_digits_is_ignored(
    make_hook: Callable[..., Any], service: FakeService, sleeps: list[float]
) -> None:
    service.token_replies = [Reply.json({"error": "slow down"}, 429, **{"Retry-After": "\u00b9"})]

    ok, message = make_hook(max_retries=1).test_connection()

    assert not ok
    assert "answered 429" in message
    assert sleeps == [0.75]


@pytest.mark.parametrize("remaining", ["\u00b2", "\u0663", "9" * 5000, "-1", 1.5])
def test_a_quota_that_is_not_plain_digits_is_unknown(
    make_hook: Callable[..., Any], service: FakeService, remaining: Any
) -> None:
    service.on("/v1/query", Reply.json({"result": 1, "daily_requests_remaining": remaining}))

    reply = make_hook().query({})

    assert reply.meta.daily_remaining is None


DEEP_ARRAY = b"[" * 5000 + b"]" * 5000
DEEP_DETAIL = b'{"detail": ' * 2000 + b'"gone"' + b"}" * 2000
# Decodes (just), but is deeper than the search for a message may follow.
NESTED_DETAIL = b'{"detail": ' * 990 + b'"gone"' + b"}" * 990


def test_a_success_nested_too_deep_is_a_protocol_error(
    make_hook: Callable[..., Any], service: FakeService
) -> None:
    service.on("/v1/query", Reply(200, DEEP_ARRAY))

    with pytest.raises(ProtocolError, match="malformed"):
        make_hook().query({})


@pytest.mark.parametrize("body", [DEEP_DETAIL, NESTED_DETAIL, b'"' + b"\\" * 3000 + b'"'])
def test_an_error_body_nested_too_deep_is_still_summarised(
    make_hook: Callable[..., Any], service: FakeService, body: bytes
) -> None:
    service.on("/v1/query", Reply(500, body))

    with pytest.raises(ServiceError, match="answered 500: "):
        make_hook(max_retries=0).query({})


@pytest.mark.parametrize(("status", "error"), [(200, ProtocolError), (400, AuthenticationError)])
def test_a_token_reply_nested_too_deep_is_a_provider_error(
    make_hook: Callable[..., Any], service: FakeService, status: int, error: type[Exception]
) -> None:
    service.token_replies = [Reply(status, DEEP_ARRAY)]

    with pytest.raises(error):
        make_hook().query({})
