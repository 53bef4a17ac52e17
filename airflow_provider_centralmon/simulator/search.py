"""Validation of search bodies, and the exact answer to a search: the ground truth.

Limitation: the real service documents no upper bound for ``time_range``; the simulator
treats it as the lower bound of ``[lower, now]``, ``now`` included, on its own clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from airflow_provider_centralmon.simulator.dataset import (
    Dataset,
    LogRecord,
    RecordFilter,
    to_epoch_ms,
)
from airflow_provider_centralmon.simulator.datemath import DateMathError, resolve_lower_bound
from airflow_provider_centralmon.simulator.settings import SimulatorSettings

EVENTOPS = "eventops"
EVENTOPS_FIELDS = ("log_group", "tenant", "stage")
APP_TYPES = ("ec2", "caas")
_SCALARS = (str, int, float, bool, type(None))


class RequestError(Exception):
    """A request the simulated service rejects.

    :param status: HTTP status of the reply
    :param detail: the ``detail`` text of the reply
    """

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class SearchQuery:
    """A validated search body.

    :param application: application searched
    :param time_range: the date math of the lower bound, as sent
    :param size: page size, already defaulted
    :param record_filter: exact-match conditions, including ``domain``, ``app_type`` and the
        EventOps fields when sent
    """

    application: str
    time_range: str
    size: int
    record_filter: RecordFilter

    def window_ms(self, now: datetime) -> tuple[int, int]:
        """Return ``[start, end)`` epoch milliseconds of the search at ``now``."""
        try:
            lower = resolve_lower_bound(self.time_range, now)
        except DateMathError as error:
            raise RequestError(400, f"Invalid time_range: {error}") from None
        return to_epoch_ms(lower), to_epoch_ms(now) + 1


def parse_search_body(body: Any, settings: SimulatorSettings, now: datetime) -> SearchQuery:
    """Validate a search body; raise :class:`RequestError` (400) naming the first problem.

    ``time_range`` is resolved at ``now`` once, so bad date math fails here.
    """
    if not isinstance(body, dict):
        raise RequestError(400, "Request body must be a JSON object")

    application = _optional_string(body, "application")
    if application is None:
        raise RequestError(400, "Field 'application' is required")
    if application not in settings.applications:
        known = ", ".join(settings.applications)
        raise RequestError(400, f"Invalid application '{application}'. Must be one of: {known}")

    time_range = _optional_string(body, "time_range")
    if time_range is None:
        raise RequestError(400, "Field 'time_range' is required")

    equals = _filters(body.get("filters"))
    for name in ("domain", "app_type", *EVENTOPS_FIELDS):
        value = _optional_string(body, name)
        if value is None:
            continue
        if name in EVENTOPS_FIELDS and application != EVENTOPS:
            raise RequestError(400, f"Field '{name}' is only valid for application 'eventops'")
        if name == "app_type" and value not in APP_TYPES:
            raise RequestError(400, "Field 'app_type' must be one of: ec2, caas")
        equals.append((name, value))

    query = SearchQuery(
        application=application,
        time_range=time_range,
        size=_size(body.get("size"), settings),
        record_filter=RecordFilter(application, tuple(equals)),
    )
    query.window_ms(now)
    return query


def select_hits(dataset: Dataset, query: SearchQuery, now: datetime) -> list[LogRecord]:
    """Return exactly the records a search at ``now`` finds, sorted by time then id."""
    start_ms, end_ms = query.window_ms(now)
    return dataset.select(query.record_filter, start_ms, end_ms)


def _optional_string(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise RequestError(400, f"Field '{name}' must be a non-empty string")
    return value


def _filters(value: Any) -> list[tuple[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, dict):
        raise RequestError(400, "Field 'filters' must be an object of field names to values")
    for name, expected in value.items():
        if not isinstance(expected, _SCALARS):
            raise RequestError(400, f"Filter '{name}' must be a string, number or boolean")
    return list(value.items())


def _size(value: Any, settings: SimulatorSettings) -> int:
    if value is None:
        return settings.default_page_size
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(400, "Field 'size' must be an integer")
    if not 1 <= value <= settings.max_page_size:
        raise RequestError(400, f"Field 'size' must be between 1 and {settings.max_page_size}")
    return value
