"""Search arguments of a trigger as JSON: Airflow stores them, and rebuilds the trigger."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from airflow_provider_centralmon._query import LogQuery
from airflow_provider_centralmon._window import ExportWindow, parse_window_bound
from airflow_provider_centralmon.exceptions import InvalidParameterError

_QUERY_FIELDS = frozenset(field.name for field in dataclasses.fields(LogQuery))


def query_from_json(value: Mapping[str, Any]) -> LogQuery:
    """Rebuild and check the query of :func:`query_to_json`."""
    unknown = set(value) - _QUERY_FIELDS
    if unknown:
        raise InvalidParameterError(f"query has unknown fields: {', '.join(sorted(unknown))}")
    query = LogQuery(**value)
    query.validate()
    return query


def query_to_json(query: LogQuery) -> dict[str, Any]:
    """Return a query as the JSON the trigger takes."""
    fields = {field.name: getattr(query, field.name) for field in dataclasses.fields(query)}
    return {name: dict(v) if isinstance(v, Mapping) else v for name, v in fields.items()}


def window_to_json(window: ExportWindow) -> dict[str, str]:
    """Return a window as the JSON the trigger takes (ISO instants, or the raw time_range)."""
    if window.start is None or window.end is None:
        return {"time_range": str(window.time_range)}
    return {"start": window.start.isoformat(), "end": window.end.isoformat()}


def window_from_json(value: Mapping[str, Any]) -> ExportWindow:
    """Rebuild the window of :func:`window_to_json`."""
    if "time_range" in value:
        return ExportWindow(time_range=str(value["time_range"]))
    return ExportWindow(
        start=parse_window_bound(value["start"], name="start"),
        end=parse_window_bound(value["end"], name="end"),
    )
