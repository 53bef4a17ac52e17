"""Secrets never reach logs, exception texts or repr(), whatever path a call takes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import requests
from hook_fakes import API, CLIENT_SECRET, FakeService, Reply

from airflow_provider_centralmon.exceptions import CentralMonitoringError

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
    assert caught.value.__suppress_context__
    assert CLIENT_SECRET not in str(caught.value)
