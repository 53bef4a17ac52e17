"""Redirects are never followed: a 3xx would re-send credentials to wherever it points."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hook_fakes import API, AUTH, FakeService, Reply

from airflow_provider_centralmon.exceptions import ProtocolError

ELSEWHERE = "http://elsewhere.example/steal?code=1"


def redirect(status: int) -> Reply:
    return Reply(status, b"", {"location": ELSEWHERE})


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("auth_method", ["client_secret_post", "client_secret_basic"])
def test_token_endpoint_redirect_is_not_followed(
    make_hook: Callable[..., Any],
    make_conn: Callable[..., str],
    service: FakeService,
    status: int,
    auth_method: str,
) -> None:
    service.token_replies = [redirect(status)]
    hook = make_hook(make_conn(extra={"auth_method": auth_method}))

    with pytest.raises(ProtocolError, match=f"answered {status}, a redirect to ") as caught:
        hook.query({})

    assert [e.url for e in service.exchanges] == [AUTH]
    assert "http://elsewhere.example/steal;" in str(caught.value)
    assert "code=1" not in str(caught.value)


@pytest.mark.parametrize("status", [307, 308])
def test_api_redirect_is_not_followed(
    make_hook: Callable[..., Any], service: FakeService, status: int
) -> None:
    service.on("/v1/logs/batch/urls", redirect(status))

    with pytest.raises(ProtocolError, match="never followed"):
        make_hook().get_batch_files("batch-token")

    assert [e.url for e in service.exchanges] == [AUTH, f"{API}/v1/logs/batch/urls"]


def test_download_redirect_is_not_followed(
    make_hook: Callable[..., Any], service: FakeService
) -> None:
    service.on("/a.json", Reply(302, b"", {"location": "/elsewhere.json"}))

    with pytest.raises(ProtocolError, match="answered 302") as caught:
        list(make_hook().iter_batch_file(f"{API}/a.json?X-Amz-Signature=sig-secret"))

    assert "a redirect to https://api.cm.test/elsewhere.json;" in str(caught.value)
    assert [e.path for e in service.exchanges] == ["/a.json"]
    assert "sig-secret" not in str(caught.value)


async def test_async_hook_gives_the_same_error_as_the_sync_one(
    make_hook: Callable[..., Any], make_async_hook: Callable[..., Any], service: FakeService
) -> None:
    service.on("/v1/logs/batch/urls", redirect(307))
    with pytest.raises(ProtocolError) as sync_error:
        make_hook().get_batch_files("batch-token")

    with pytest.raises(ProtocolError) as async_error:
        await make_async_hook().get_batch_files("batch-token")

    assert str(async_error.value) == str(sync_error.value)
    assert [e.path for e in service.api_requests] == ["/v1/logs/batch/urls"] * 2


async def test_async_token_endpoint_redirect_is_not_followed(
    make_async_hook: Callable[..., Any], service: FakeService
) -> None:
    service.token_replies = [redirect(307)]

    with pytest.raises(ProtocolError, match="answered 307, a redirect to "):
        await make_async_hook().get_batch_files("batch-token")

    assert [e.url for e in service.exchanges] == [AUTH]
