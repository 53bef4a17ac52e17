from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
import requests
from hook_fakes import AUTH, CLIENT_ID, CLIENT_SECRET, Exchange, FakeService, ManualClock, Reply

from airflow_provider_centralmon.exceptions import AuthenticationError, ServiceError
from airflow_provider_centralmon.hooks import _oauth
from airflow_provider_centralmon.hooks._token import UNKNOWN_LIFETIME_S, token_state

OK = Reply.json({"logs": [], "has_more": False})


def test_credentials_travel_in_the_form_body_without_scope_by_default(
    make_hook: Callable[..., Any], service: FakeService
) -> None:
    service.on("/v1/query", OK)

    make_hook().query({"domain_name": "d"})

    [request] = service.token_requests
    assert request.method == "POST"
    assert request.form() == {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    assert "authorization" not in request.headers


def test_scope_and_http_basic_are_chosen_by_extras(
    make_hook: Callable[..., Any], make_conn: Callable[..., str], service: FakeService
) -> None:
    conn_id = make_conn(extra={"scope": "api/read", "auth_method": "client_secret_basic"})

    make_hook(conn_id).test_connection()

    [request] = service.token_requests
    assert request.form() == {"grant_type": "client_credentials", "scope": "api/read"}
    expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {expected}"


@pytest.mark.parametrize(
    ("error", "names"),
    [
        ("invalid_client", "login (client id) and password (client secret)"),
        ("unauthorized_client", "login (client id) and password (client secret)"),
        ("invalid_grant", "login (client id) and password (client secret)"),
        ("unsupported_grant_type", "login (client id) and password (client secret)"),
        ("invalid_scope", "extra `scope`"),
    ],
)
def test_refused_credentials_fail_at_once_naming_the_setting(
    make_hook: Callable[..., Any], service: FakeService, error: str, names: str
) -> None:
    service.token_replies = [Reply.json({"error": error, "error_description": "nope"}, status=400)]

    ok, message = make_hook().test_connection()

    assert not ok
    assert names in message
    assert f"{error}: nope" in message
    assert "'centralmon_default'" in message
    assert CLIENT_SECRET not in message
    assert len(service.token_requests) == 1


def test_refusal_raises_authentication_error_with_the_oauth_code(
    make_hook: Callable[..., Any], service: FakeService
) -> None:
    service.token_replies = [Reply.json({"error": "invalid_client"}, status=401)]

    with pytest.raises(AuthenticationError) as caught:
        make_hook().query({})

    assert caught.value.oauth_error == "invalid_client"
    assert caught.value.http_status == 401
    assert service.api_requests == []


@pytest.mark.parametrize(
    "failure",
    [
        Reply(429, b'{"error": "slow down"}'),
        Reply(503, b"<html><title>Service Unavailable</title></html>"),
        requests.ConnectionError("refused"),
    ],
)
def test_transient_token_failures_are_retried_with_backoff(
    make_hook: Callable[..., Any], service: FakeService, sleeps: list[float], failure: Any
) -> None:
    service.token_replies = [failure, failure, service._issue()]

    ok, _ = make_hook().test_connection()

    assert ok
    assert len(service.token_requests) == 3
    # rng is fixed at 0.5: 3/4 of a ceiling that doubles from 1 s.
    assert sleeps == [0.75, 1.5]


def test_persistent_token_failure_becomes_service_error(
    make_hook: Callable[..., Any], service: FakeService, sleeps: list[float]
) -> None:
    service.token_replies = [Reply(502, b"Bad Gateway")]

    with pytest.raises(ServiceError, match=r"token endpoint .* answered 502: Bad Gateway"):
        make_hook(max_retries=2).query({})

    assert len(service.token_requests) == 3
    assert len(sleeps) == 2


@pytest.mark.parametrize("expires_in", [None, "soon", -5, 0, True, "inf", [3600]])
def test_token_without_readable_lifetime_is_short_lived(
    make_hook: Callable[..., Any], service: FakeService, clock: ManualClock, expires_in: Any
) -> None:
    service.expires_in = expires_in
    hook = make_hook()
    service.on("/v1/query", OK)

    hook.query({})
    clock.advance(UNKNOWN_LIFETIME_S)
    hook.query({})

    assert len(service.token_requests) == 2


def test_stated_lifetime_as_string_is_read(
    make_hook: Callable[..., Any], service: FakeService, clock: ManualClock
) -> None:
    service.expires_in = "3600"
    service.on("/v1/query", OK)
    hook = make_hook()

    hook.query({})
    clock.advance(2000)
    hook.query({})

    assert len(service.token_requests) == 1


def test_every_token_is_masked_and_expiry_logged_without_value(
    make_hook: Callable[..., Any],
    service: FakeService,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    masked: list[str] = []
    monkeypatch.setattr(_oauth, "mask_secret", masked.append)
    caplog.set_level("DEBUG")

    ok, message = make_hook().test_connection()

    assert ok
    assert "expires at" in message
    assert masked == ["token-1-abcdefgh"]
    assert "login/password of connection 'centralmon_default'" in caplog.text
    assert "token-1-abcdefgh" not in caplog.text


def test_test_connection_spends_no_api_quota(
    make_hook: Callable[..., Any], service: FakeService
) -> None:
    ok, _ = make_hook().test_connection()

    assert ok
    assert service.api_requests == []
    assert [r.url for r in service.token_requests] == [AUTH]


def test_test_connection_reports_a_missing_token_in_the_reply(
    make_hook: Callable[..., Any], service: FakeService
) -> None:
    service.token_replies = [Reply.json({"token_type": "Bearer"})]

    ok, message = make_hook().test_connection()

    assert not ok
    assert "without an access_token" in message


def test_lifetime_beyond_a_day_is_not_believed(clock: ManualClock) -> None:
    token = _oauth.AccessToken("v", obtained_at=0.0, lifetime_s=_oauth._lifetime_s(10**9) or 0)

    assert token.lifetime_s == _oauth.MAX_LIFETIME_S
    assert token_state(token, 86_400.0).value == "must-refresh"


def test_a_connection_with_another_secret_never_borrows_the_token(
    make_hook: Callable[..., Any], make_conn: Callable[..., str], service: FakeService
) -> None:
    def token_endpoint(exchange: Exchange) -> Reply:
        if exchange.form().get("client_secret") != CLIENT_SECRET:
            return Reply.json({"error": "invalid_client"}, 400)
        return Reply.json({"access_token": "right-token-1234", "expires_in": 3600})

    service.token_replies = [token_endpoint]
    service.on("/v1/query", OK)
    make_hook().query({})
    wrong = make_conn("wrong", password="a-wrong-secret")

    with pytest.raises(AuthenticationError, match="invalid_client"):
        make_hook(wrong).query({})
    make_hook().query({})

    assert len(service.token_requests) == 2
    assert len(service.api_requests) == 2


def test_the_token_key_holds_no_secret(make_hook: Callable[..., Any]) -> None:
    key = make_hook().settings.token_key

    assert CLIENT_SECRET not in repr(key)
    assert key[:3] == (AUTH, CLIENT_ID, None)
