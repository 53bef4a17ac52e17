from __future__ import annotations

import pickle
from datetime import UTC, datetime

import pytest

from airflow_provider_centralmon.exceptions import (
    AuthenticationError,
    BadRequestError,
    CentralMonitoringError,
    InvalidWindowError,
    QuotaExhaustedError,
    QuotaFloorError,
    ServiceError,
)


def test_errors_survive_pickling_with_their_fields() -> None:
    resets_at = datetime(2026, 12, 4, tzinfo=UTC)
    error = QuotaFloorError(
        "quota below floor", remaining=3, resets_at=resets_at, http_status=429, request_id="r-1"
    )

    copy = pickle.loads(pickle.dumps(error))

    assert type(copy) is QuotaFloorError
    assert (copy.remaining, copy.resets_at, copy.http_status, copy.request_id) == (
        3,
        resets_at,
        429,
        "r-1",
    )
    assert str(copy) == "quota below floor (request id r-1)"


def test_one_except_catches_every_provider_error() -> None:
    for error in (
        AuthenticationError("refused", oauth_error="invalid_client"),
        BadRequestError("bad", detail="unknown application"),
        QuotaExhaustedError("used up"),
        ServiceError("gateway"),
        InvalidWindowError("empty window"),
    ):
        with pytest.raises(CentralMonitoringError):
            raise error


def test_parameter_errors_are_value_errors_and_only_service_errors_retry() -> None:
    assert isinstance(InvalidWindowError("x"), ValueError)
    assert ServiceError("x").retryable
    assert not QuotaExhaustedError("x").retryable
    assert not AuthenticationError("x").retryable
