"""Trigger events of this provider, and turning an error event back into its exception.

An event is a small JSON object with a ``status``: ``success``, ``failed``, ``timeout`` or
``error``. Events are stored in Airflow's database unmasked, so they hold metadata only: no
token, no URL, no record. An ``error`` event names the provider exception the trigger caught
(its class name and its message, which never quotes a secret), so the task raises the same
class a worker-side call would have raised.
"""

from __future__ import annotations

import inspect
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn

from airflow_provider_centralmon import exceptions
from airflow_provider_centralmon.exceptions import (
    CentralMonitoringError,
    ProtocolError,
    QuotaExhaustedError,
)

if TYPE_CHECKING:
    from airflow_provider_centralmon._compat import TriggerEvent

SUCCESS = "success"
FAILED = "failed"
TIMEOUT = "timeout"
ERROR = "error"

_BASE_PARAMETERS = frozenset({"self", "message", "http_status", "request_id", "args", "kwargs"})


def trigger_event(payload: Mapping[str, Any]) -> TriggerEvent:
    """Wrap an event's payload for a trigger to yield."""
    from airflow_provider_centralmon._compat import TriggerEvent

    return TriggerEvent(dict(payload))  # type: ignore[no-untyped-call]  # unannotated in Airflow


def error_event(error: CentralMonitoringError) -> dict[str, Any]:
    """Return the event that reports a provider error caught by a trigger."""
    event: dict[str, Any] = {
        "status": ERROR,
        "error_type": type(error).__name__,
        "message": error.message,
        "http_status": error.http_status,
        "request_id": error.request_id,
    }
    if isinstance(error, QuotaExhaustedError):
        event["remaining"] = error.remaining
        event["resets_at"] = None if error.resets_at is None else error.resets_at.isoformat()
    return event


def event_status(event: Any, expected: Collection[str], *, where: str) -> str:
    """Return the status of an event, or raise :class:`ProtocolError` for an unknown one.

    :param event: what the trigger sent, as ``execute_complete`` received it
    :param expected: the statuses the caller handles
    :param where: names the task in the message
    """
    status = event.get("status") if isinstance(event, Mapping) else None
    if status not in expected:
        shown = status if isinstance(status, str) else type(event).__name__
        raise ProtocolError(
            f"{where} resumed with an unknown trigger event ({shown!r}); expected one of "
            f"{', '.join(sorted(expected))}"
        )
    return str(status)


def raise_error_event(event: Mapping[str, Any]) -> NoReturn:
    """Raise the provider exception an ``error`` event describes."""
    cls = getattr(exceptions, str(event.get("error_type")), None)
    if not (isinstance(cls, type) and issubclass(cls, CentralMonitoringError)):
        cls = CentralMonitoringError
    message = str(event.get("message") or "the trigger failed without a message")

    # Rebuilt without calling the subclass's constructor, whose keyword arguments differ.
    error = cls.__new__(cls)
    CentralMonitoringError.__init__(
        error,
        message,
        http_status=_optional_int(event.get("http_status")),
        request_id=_optional_str(event.get("request_id")),
    )
    # Fields of the subclass that the event does not carry exist, empty.
    for name in inspect.signature(cls.__init__).parameters.keys() - _BASE_PARAMETERS:
        setattr(error, name, None)
    if isinstance(error, QuotaExhaustedError):
        error.remaining = _optional_int(event.get("remaining"))
        error.resets_at = _optional_instant(event.get("resets_at"))
    raise error


def _optional_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _optional_instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).astimezone(UTC)
    except ValueError:
        return None
