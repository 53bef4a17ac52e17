"""Fixtures of the hook tests; the fakes themselves live in hook_fakes.py."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hook_fakes import (
    API,
    AUTH,
    CLIENT_ID,
    CLIENT_SECRET,
    FakeAdapter,
    FakeService,
    ManualClock,
    mock_transport,
)

from airflow_provider_centralmon.hooks import _core, _token


@pytest.fixture(autouse=True)
def _fresh_process_state() -> Iterator[None]:
    # The token cache and the remembered routes live for the process on purpose; each test
    # starts as a new process would.
    _token.clear_token_cache()
    _core._found_routes.clear()
    yield
    _token.clear_token_cache()
    _core._found_routes.clear()


@pytest.fixture
def service() -> FakeService:
    return FakeService()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_conn(monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """Define a connection through the environment and return its id."""

    def make(conn_id: str = "centralmon_default", **fields: Any) -> str:
        definition = {
            "conn_type": "centralmon",
            "host": API,
            "login": CLIENT_ID,
            "password": CLIENT_SECRET,
            "extra": {"auth_url": AUTH},
        }
        extra_updates = fields.pop("extra", None)
        definition.update(fields)
        if extra_updates is not None:
            definition["extra"] = {**definition["extra"], **extra_updates}
        definition = {k: v for k, v in definition.items() if v is not None}
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(definition))
        return conn_id

    return make


@pytest.fixture
def make_hook(
    service: FakeService,
    clock: ManualClock,
    sleeps: list[float],
    make_conn: Callable[..., str],
) -> Iterator[Callable[..., Any]]:
    """Build sync hooks wired to the fake service, a manual clock and a recording sleep."""
    from airflow_provider_centralmon.hooks.centralmon import CentralMonitoringHook

    hooks: list[CentralMonitoringHook] = []

    def make(conn_id: str | None = None, **kwargs: Any) -> CentralMonitoringHook:
        hook = CentralMonitoringHook(
            conn_id or make_conn(),
            http_adapter=FakeAdapter(service),
            clock=clock,
            sleep=sleeps.append,
            rng=lambda: 0.5,
            **kwargs,
        )
        hooks.append(hook)
        return hook

    yield make
    for hook in hooks:
        hook.close()


@pytest.fixture
def make_async_hook(
    service: FakeService,
    clock: ManualClock,
    sleeps: list[float],
    make_conn: Callable[..., str],
) -> Callable[..., Any]:
    """Build async hooks wired to the fake service, a manual clock and a recording sleep."""
    from airflow_provider_centralmon.hooks.centralmon_async import CentralMonitoringAsyncHook

    async def record_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    def make(conn_id: str | None = None, **kwargs: Any) -> CentralMonitoringAsyncHook:
        return CentralMonitoringAsyncHook(
            conn_id or make_conn(),
            transport=mock_transport(service),
            clock=clock,
            sleep=record_sleep,
            rng=lambda: 0.5,
            **kwargs,
        )

    return make


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> Callable[[], str]:
    """Return everything logged so far at DEBUG and above, whichever logging Airflow uses.

    Airflow 3 sends ``self.log`` of hooks through structlog to the console, Airflow 2 through
    the standard library; both are collected.
    """
    caplog.set_level("DEBUG")

    def read() -> str:
        captured = capsys.readouterr()
        collected.append(captured.out + captured.err)
        return caplog.text + "".join(collected)

    collected: list[str] = []
    return read
