"""Fixtures of the operator tests: a simulator on the operators' clock, log capture."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from operator_support import attach

from airflow_provider_centralmon._quota_memory import forget_quotas
from airflow_provider_centralmon.hooks import _core, _token
from airflow_provider_centralmon.simulator.handle import SimulatorHandle


@pytest.fixture(autouse=True)
def _fresh_process_state() -> Iterator[None]:
    # Tokens, remembered routes and quota readings live for the process on purpose; each test
    # starts as a new process would.
    _token.clear_token_cache()
    _core._found_routes.clear()
    forget_quotas()
    yield
    _token.clear_token_cache()
    _core._found_routes.clear()
    forget_quotas()


@pytest.fixture
def sim(centralmon_simulator: SimulatorHandle, monkeypatch: pytest.MonkeyPatch) -> SimulatorHandle:
    """The session's simulator (reset), used by the default connection and the operators."""
    return attach(centralmon_simulator, monkeypatch)


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> Callable[[], str]:
    """Return everything logged so far, whichever logging Airflow uses.

    Airflow 3 sends ``self.log`` of operators and hooks through structlog to the console,
    Airflow 2 through the standard library; both are collected.
    """
    caplog.set_level("DEBUG")
    collected: list[str] = []

    def read() -> str:
        captured = capfd.readouterr()
        collected.append(captured.out + captured.err)
        return caplog.text + "".join(collected)

    return read
