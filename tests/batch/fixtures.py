"""Fixtures shared by the batch, sensor and trigger tests (imported by their conftest)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from batch.support import reset_process_state


@pytest.fixture(autouse=True)
def _fresh_process_state() -> Iterator[None]:
    # Tokens, remembered routes and quota readings live for the process on purpose; each test
    # starts as a new process would.
    reset_process_state()
    yield
    reset_process_state()


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> Callable[[], str]:
    """Return everything logged so far, through structlog (Airflow 3) or logging (Airflow 2)."""
    caplog.set_level("DEBUG")
    collected: list[str] = []

    def read() -> str:
        captured = capfd.readouterr()
        collected.append(captured.out + captured.err)
        return caplog.text + "".join(collected)

    return read
