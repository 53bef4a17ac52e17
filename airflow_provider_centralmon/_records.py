"""Log records as the service returns them: unwrapping, record time, sort key, encoding.

A record arrives either bare (a JSON object) or wrapped as an OpenSearch hit
(``{"_index": ..., "_id": ..., "_source": {...}}``). Its time is read from a configurable field
of the bare record or of the hit's ``_source``, and returned as integer microseconds since the
Unix epoch (UTC), so that window checks and sorting are plain integer comparisons.

Accepted record times:

- ISO 8601 strings with ``Z`` or any ``+hh:mm``/``+hhmm`` offset, with or without fractional
  seconds (digits beyond microseconds are cut off). A string without an offset is read as UTC,
  which is how OpenSearch stores dates that carry no zone.
- Epoch milliseconds as an int, a float or a string of ASCII digits, with an optional
  fraction (OpenSearch's ``epoch_millis``).

Anything else (missing field, ``null``, booleans, objects, unparsable text, dates outside the
years 1 to 9999) is "untimed": :func:`parse_record_time` returns ``None`` and the window filter
applies its policy.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import msgspec

DEFAULT_TIMESTAMP_FIELD = "@timestamp"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MICROSECOND = timedelta(microseconds=1)
_MIN_TIME_US = (datetime(1, 1, 2, tzinfo=UTC) - _EPOCH) // _ONE_MICROSECOND
_MAX_TIME_US = (datetime(9999, 12, 30, tzinfo=UTC) - _EPOCH) // _ONE_MICROSECOND

# ASCII only: str.isdigit() and float() also take other scripts' digits, superscripts (which
# int() then refuses) and underscores, none of which is an epoch_millis value.
_EPOCH_MILLIS_DIGITS = re.compile(r"[0-9]+")
_EPOCH_MILLIS_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")

#: Sort position of records without a time: after every timed record.
UNTIMED_SORT_US = 2**63 - 1

_ENCODER = msgspec.json.Encoder()

SortKey = tuple[int, bytes, bytes]
"""(time in microseconds or :data:`UNTIMED_SORT_US`, record id as UTF-8, encoded line)."""


class UnwrappedRecord(NamedTuple):
    """One item of a reply, split into what is written and what is read."""

    #: What the export writes: the hit's ``_source``, the whole hit, or the bare record.
    record: Mapping[str, Any]
    #: Where the record's fields (and its time) are read from.
    source: Mapping[str, Any]
    #: The hit's ``_id`` as a string, or ``""`` when the item has none.
    record_id: str


def unwrap_record(item: Mapping[str, Any], *, keep_hit_metadata: bool = False) -> UnwrappedRecord:
    """Split a reply item into the record to write, its fields and its id.

    :param item: a bare record, or an OpenSearch hit with the record under ``_source``
    :param keep_hit_metadata: write the whole hit (``_index``, ``_id``, ``_source``, ...)
        instead of only its ``_source``. Default: False.
    """
    # dict before the Mapping ABC: records come from JSON, and this runs for every record.
    source = item.get("_source")
    if not (type(source) is dict or isinstance(source, Mapping)):
        return UnwrappedRecord(item, item, _id_text(item.get("_id")))

    record_id = _id_text(item.get("_id"))
    if keep_hit_metadata:
        return UnwrappedRecord(item, source, record_id)
    return UnwrappedRecord(source, source, record_id)


def _id_text(value: object) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def parse_record_time(value: object) -> int | None:
    """Return a record time as microseconds since the epoch (UTC), or None if unreadable."""
    if isinstance(value, str):
        return _parse_time_text(value)

    # bool is an int subclass, but true/false is never a time.
    if isinstance(value, int) and not isinstance(value, bool):
        return _checked(value * 1000)

    if isinstance(value, float):
        return _epoch_millis_float(value)
    return None


def _parse_time_text(text: str) -> int | None:
    # Digits alone are epoch milliseconds: checked first because fromisoformat would read
    # "20261201" as a basic-format date.
    if _EPOCH_MILLIS_DIGITS.fullmatch(text):
        return _checked(int(text) * 1000)

    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return _epoch_millis_text(text)

    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return (parsed - _EPOCH) // _ONE_MICROSECOND
    except OverflowError:
        # Early in year 1 with a positive offset, the UTC instant falls before the calendar.
        return None


def _epoch_millis_text(text: str) -> int | None:
    number = text.strip()
    if not _EPOCH_MILLIS_NUMBER.fullmatch(number):
        return None
    return _epoch_millis_float(float(number))


def _epoch_millis_float(value: float) -> int | None:
    if not math.isfinite(value):
        return None
    return _checked(round(value * 1000))


def _checked(time_us: int) -> int | None:
    if _MIN_TIME_US <= time_us <= _MAX_TIME_US:
        return time_us
    return None


def time_from_us(time_us: int) -> datetime:
    """Return the UTC datetime of a time in microseconds since the epoch."""
    return _EPOCH + time_us * _ONE_MICROSECOND


def time_to_us(instant: datetime) -> int:
    """Return a timezone-aware datetime as microseconds since the epoch."""
    return (instant - _EPOCH) // _ONE_MICROSECOND


def make_time_reader(field: str = DEFAULT_TIMESTAMP_FIELD) -> Callable[[Mapping[str, Any]], Any]:
    """Return a function that reads ``field`` from a record or from a hit's ``_source``.

    A dotted field such as ``event.created`` is first looked up as a literal key (flattened
    documents), then as a path into nested objects.

    :param field: name or dotted path of the time field. Default: ``@timestamp``.
    """
    path = tuple(field.split("."))

    def read(item: Mapping[str, Any]) -> Any:
        source = item.get("_source")
        if source is not None and (type(source) is dict or isinstance(source, Mapping)):
            item = source

        value = item.get(field)
        if value is not None or len(path) == 1:
            return value

        node: Any = item
        for step in path:
            if not isinstance(node, Mapping):
                return None
            node = node.get(step)
        return node

    return read


def encode_line(record: Mapping[str, Any]) -> bytes:
    """Return the record as one compact JSON line, keys in the order received."""
    return _ENCODER.encode(record) + b"\n"


def sort_key(time_us: int | None, record_id: str, line: bytes) -> SortKey:
    """Return the deterministic sort key of an encoded record.

    Records sort by time (untimed ones last), then by id, then by their encoded bytes, so
    the order never depends on the order the service sent them in, and two records are
    exact duplicates exactly when their keys are equal.

    :param time_us: the record time in microseconds since the epoch, or None
    :param record_id: the hit's ``_id``, or ``""``
    :param line: the record as written (see :func:`encode_line`)
    """
    sort_time = UNTIMED_SORT_US if time_us is None else time_us
    return (sort_time, record_id.encode(), line)
