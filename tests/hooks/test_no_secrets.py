"""Secrets never reach logs, exception texts or repr(), whatever path a call takes."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
import requests
from hook_fakes import API, CLIENT_SECRET, Exchange, FakeService, Reply

from airflow_provider_centralmon._trigger_events import error_event
from airflow_provider_centralmon.exceptions import (
    CentralMonitoringError,
    PermissionDeniedError,
    ServiceError,
)

SCROLL_ID = "scroll-cursor-SECRET-1"
BATCH_TOKEN = "batch-token-SECRET-2"
SIGNATURE = "Signature-SECRET-3"
SECRETS = (CLIENT_SECRET, SCROLL_ID, BATCH_TOKEN, SIGNATURE, "token-1-abcdefgh", "token-2-abcdefgh")


def exercise(hook: Any, service: FakeService) -> list[object]:
    """Drive every public call through successes and failures; return what a user could see."""
    seen: list[object] = [hook, hook.settings]
    service.on(
        "/v2/logs/scroll",
        Reply.json({"logs": [{"n": 1}], "scroll_id": SCROLL_ID, "has_more": True}),
        # An error body that echoes the cursor back must not carry it into a message.
        Reply.json({"detail": f"unknown scroll_id {SCROLL_ID}"}, 400),
    )
    service.on("/v1/logs/batch", Reply.json({"token": BATCH_TOKEN, "daily_requests_remaining": 3}))
    url = f"{API}/f.json?X-Amz-Signature={SIGNATURE}&Expires=1"
    service.on(
        "/v1/logs/batch/urls",
        Reply.json({"detail": "expired"}, 401),
        Reply.json(
            {"presigned_urls": [{"presigned_url": url, "ready": True, "status": "completed"}]}
        ),
        Reply.json({"detail": f"bad token {BATCH_TOKEN}"}, 400),
    )
    service.on("/f.json", Reply(403, b"Request has expired"), Reply(200, json.dumps([{}]).encode()))
    service.on(
        "/v1/query", requests.ConnectionError(f"HTTPSConnectionPool: url /x?sig={SIGNATURE}")
    )

    calls: list[Callable[[], Any]] = [
        lambda: list(hook.scroll({"application": "atr"})),
        lambda: hook.submit_batch({"application": "atr"}),
        lambda: hook.get_batch_files(BATCH_TOKEN),
        lambda: hook.get_batch_files(BATCH_TOKEN),
        lambda: list(hook.iter_batch_file(url)),
        lambda: list(hook.iter_batch_file(url)),
        lambda: hook.query({}),
        lambda: hook.unseal(hook.seal(BATCH_TOKEN)[:-3] + "xyz"),
        hook.test_connection,
    ]
    for call in calls:
        try:
            seen.append(call())
        except CentralMonitoringError as error:
            seen.extend([error, repr(error), error.__dict__])
    return seen


def test_no_secret_in_logs_errors_or_reprs(
    make_hook: Callable[..., Any], service: FakeService, logs: Callable[[], str]
) -> None:
    hook = make_hook(max_retries=1)

    seen = exercise(hook, service)

    text = logs() + "\n".join(str(item) + repr(item) for item in seen)
    assert len(seen) > 10
    for secret in SECRETS:
        assert secret not in text


def test_token_endpoint_errors_do_not_echo_the_secret(
    make_hook: Callable[..., Any], service: FakeService, logs: Callable[[], str]
) -> None:
    service.token_replies = [
        Reply.json({"error": "invalid_client", "error_description": f"bad {CLIENT_SECRET}"}, 400)
    ]

    ok, message = make_hook().test_connection()

    assert not ok
    assert CLIENT_SECRET not in message + logs()


@pytest.mark.parametrize("auth_method", ["client_secret_post", "client_secret_basic"])
def test_failed_token_transport_hides_the_request(
    make_hook: Callable[..., Any],
    make_conn: Callable[..., str],
    service: FakeService,
    auth_method: str,
) -> None:
    service.token_replies = [requests.ConnectionError(f"body was {CLIENT_SECRET}")]
    hook = make_hook(make_conn(extra={"auth_method": auth_method}), max_retries=0)

    with pytest.raises(CentralMonitoringError) as caught:
        hook.query({})

    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None
    assert CLIENT_SECRET not in str(caught.value)


def forms_of(secret: str) -> list[str]:
    escaped = json.dumps(secret)[1:-1]
    return [secret, escaped.replace("/", "\\/"), quote(secret, safe=""), quote_plus(secret)]


def echo_authorization(exchange: Exchange) -> Reply:
    # An API gateway's reply to a header it cannot parse quotes the header.
    quoted = exchange.headers["authorization"]
    return Reply.json(
        {"message": f"Invalid key=value pair in Authorization header: '{quoted}'"}, 403
    )


def test_an_error_that_quotes_the_bearer_token_does_not_show_it(
    make_hook: Callable[..., Any], service: FakeService
) -> None:
    service.on("/v1/query", echo_authorization)

    with pytest.raises(PermissionDeniedError) as caught:
        make_hook().query({})

    assert "token-1-abcdefgh" not in str(caught.value) + repr(caught.value.__dict__)
    assert "Authorization header: 'Bearer ***'" in str(caught.value)


async def test_a_trigger_event_never_holds_the_bearer_token(
    make_async_hook: Callable[..., Any], service: FakeService
) -> None:
    service.on("/v1/logs/batch/urls", echo_authorization)

    with pytest.raises(PermissionDeniedError) as caught:
        await make_async_hook().get_batch_files(BATCH_TOKEN)

    assert "token-1-abcdefgh" not in json.dumps(error_event(caught.value))


def echo_body_escaped(exchange: Exchange) -> Reply:
    # Many JSON encoders write "/" as "\/"; the echo must still be recognised.
    escaped = exchange.body.decode().replace("/", "\\/")
    return Reply(500, b'{"unknown_field": ' + escaped.encode() + b"}")


@pytest.mark.parametrize("secret", ["batch/token+SECRET==", "bätch/tøken=SECRET"])
def test_an_echoed_batch_token_is_blanked_in_every_spelling(
    make_hook: Callable[..., Any], service: FakeService, secret: str
) -> None:
    service.on("/v1/logs/batch/urls", echo_body_escaped)

    with pytest.raises(ServiceError) as caught:
        make_hook(max_retries=0).get_batch_files(secret)

    assert not [form for form in forms_of(secret) if form in str(caught.value)]
    assert "***" in str(caught.value)


def test_an_echoed_scroll_id_is_blanked_when_json_escaped(
    make_hook: Callable[..., Any], service: FakeService
) -> None:
    scroll_id = "DXF1ZXJ5/QW5kRmV0Y2g+SCROLL=="
    first = Reply.json({"logs": [{"n": 1}], "scroll_id": scroll_id, "has_more": True})
    service.on(
        "/v2/logs/scroll", lambda e: echo_body_escaped(e) if "scroll_id" in e.json() else first
    )

    with pytest.raises(ServiceError) as caught:
        list(make_hook(max_retries=0).scroll({"application": "atr"}))

    assert not [form for form in forms_of(scroll_id) if form in str(caught.value)]


@pytest.mark.parametrize("auth_method", ["client_secret_post", "client_secret_basic"])
def test_a_token_endpoint_page_echoing_the_request_shows_no_credential(
    make_hook: Callable[..., Any],
    make_conn: Callable[..., str],
    service: FakeService,
    auth_method: str,
) -> None:
    secret = "p@ss w0rd&SECRET/+="

    def echo_request(exchange: Exchange) -> Reply:
        sent = f"{exchange.headers.get('authorization', '')} {exchange.body.decode()}"
        page = f"<html><body>Bad request: {sent}</body></html>"
        return Reply(400, page.encode(), {"content-type": "text/html"})

    service.token_replies = [echo_request]
    conn_id = make_conn(password=secret, extra={"auth_method": auth_method})

    ok, message = make_hook(conn_id).test_connection()

    sent = service.token_requests[0].headers.get("authorization")
    basic = [sent.split()[1]] if sent else []
    assert not ok
    assert not [form for form in [*forms_of(secret), *basic] if form in message]


def test_an_s3_error_quoting_the_signature_does_not_show_it(
    make_hook: Callable[..., Any], service: FakeService
) -> None:
    body = (
        "<Error><Code>SignatureDoesNotMatch</Code>"
        f"<SignatureProvided>{SIGNATURE}</SignatureProvided></Error>"
    )
    service.on("/f.json", Reply(403, body.encode(), {"content-type": "application/xml"}))

    with pytest.raises(CentralMonitoringError) as caught:
        list(make_hook().iter_batch_file(f"{API}/f.json?X-Amz-Signature={SIGNATURE}"))

    assert SIGNATURE not in str(caught.value)
    assert "SignatureDoesNotMatch" in str(caught.value)


def lower_escapes(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda escape: escape.group(0).lower(), text)


@pytest.mark.parametrize(
    "spelling",
    [
        lambda secret: lower_escapes(quote(secret, safe="")),
        lambda secret: quote(secret, safe="/"),
        lambda secret: lower_escapes(quote(secret, safe="/")),
    ],
)
def test_a_batch_token_echoed_url_encoded_in_any_case_is_blanked(
    make_hook: Callable[..., Any], service: FakeService, spelling: Callable[[str], str]
) -> None:
    secret = "ABC/DEF+GHI=JKL"
    echoed = spelling(secret)
    service.on("/v1/logs/batch/urls", Reply.json({"detail": f"unknown batch token {echoed}"}, 400))

    with pytest.raises(CentralMonitoringError) as caught:
        make_hook(max_retries=0).get_batch_files(secret)

    assert echoed not in str(caught.value)
    assert "unknown batch token ***" in str(caught.value)


def test_an_s3_error_quoting_the_access_key_id_does_not_show_it(
    make_hook: Callable[..., Any], service: FakeService
) -> None:
    key_id = "ASIAQEXAMPLEKEY12345"
    credential = f"{key_id}/20261204/ap-southeast-2/s3/aws4_request"
    body = (
        "<Error><Code>SignatureDoesNotMatch</Code>"
        f"<AWSAccessKeyId>{key_id}</AWSAccessKeyId></Error>"
    )
    service.on("/f.json", Reply(403, body.encode(), {"content-type": "application/xml"}))
    url = f"{API}/f.json?X-Amz-Credential={quote(credential, safe='')}&X-Amz-Signature={SIGNATURE}"

    with pytest.raises(CentralMonitoringError) as caught:
        list(make_hook().iter_batch_file(url))

    assert key_id not in str(caught.value)
    assert "SignatureDoesNotMatch" in str(caught.value)


def chain_of(error: BaseException) -> str:
    """Return everything a traceback printer or an error tracker could show of an error."""
    seen = []
    link: BaseException | None = error
    while link is not None:
        seen.append(f"{type(link).__name__}: {link}")
        link = link.__cause__ or link.__context__
    return "\n".join(seen)


@pytest.mark.parametrize("failure", [requests.ConnectionError, requests.ReadTimeout])
def test_a_failed_download_keeps_no_exception_that_quotes_the_url(
    make_hook: Callable[..., Any], service: FakeService, failure: type[Exception]
) -> None:
    url = f"{API}/f.json?X-Amz-Signature={SIGNATURE}"
    service.on(
        "/f.json", failure(f"Max retries exceeded with url: /f.json?X-Amz-Signature={SIGNATURE}")
    )

    with pytest.raises(ServiceError) as caught:
        list(make_hook(max_retries=0).iter_batch_file(url))

    assert caught.value.__context__ is None
    assert SIGNATURE not in chain_of(caught.value)


async def test_an_async_transport_failure_keeps_no_exception_that_quotes_the_request(
    make_async_hook: Callable[..., Any], service: FakeService
) -> None:
    service.on("/v1/logs/batch/urls", requests.ConnectionError(f"token {BATCH_TOKEN}"))

    with pytest.raises(ServiceError) as caught:
        await make_async_hook(max_retries=0).get_batch_files(BATCH_TOKEN)

    assert caught.value.__context__ is None
    assert BATCH_TOKEN not in chain_of(caught.value)
