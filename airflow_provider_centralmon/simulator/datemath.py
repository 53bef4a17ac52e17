"""OpenSearch date math, resolved as the lower bound of a range.

Accepted: ``now`` or an anchor date followed by ``||`` (``2026-12-01T10:00:00Z||``), then any
number of ``+N<unit>``/``-N<unit>`` steps and ``/<unit>`` roundings, with units ``y M w d h H m
s``. A plain ISO 8601 date without operations is accepted too. Rounding floors, as OpenSearch
does for a ``gte`` bound; weeks start on Monday.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta

_STEP = re.compile(r"([+-])(\d+)([yMwdhHms])|/([yMwdhHms])")
_FIXED_UNITS = {
    "w": timedelta(weeks=1),
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "H": timedelta(hours=1),
    "m": timedelta(minutes=1),
    "s": timedelta(seconds=1),
}


class DateMathError(ValueError):
    """The expression is not date math the simulator understands."""


def resolve_lower_bound(expression: str, now: datetime) -> datetime:
    """Return the instant ``expression`` denotes, relative to ``now`` (timezone-aware UTC)."""
    text = expression.strip()
    if text.startswith("now"):
        anchor, operations = now, text[3:]
    elif "||" in text:
        date_text, _, operations = text.partition("||")
        anchor = _parse_absolute(date_text)
    else:
        anchor, operations = _parse_absolute(text), ""

    position = 0
    instant = anchor
    while position < len(operations):
        match = _STEP.match(operations, position)
        if match is None:
            unparsed = operations[position:]
            raise DateMathError(f"cannot parse date math {expression!r} at {unparsed!r}")
        sign, amount, unit, rounding = match.groups()
        try:
            if rounding:
                instant = floor_to_unit(instant, rounding)
            else:
                instant = _shift(instant, int(amount) * (1 if sign == "+" else -1), unit)
        except (OverflowError, ValueError):
            raise DateMathError(f"date math {expression!r} leaves the range of dates") from None
        position = match.end()
    return instant


def floor_to_unit(instant: datetime, unit: str) -> datetime:
    """Round ``instant`` down to the start of its year, month, week, day, hour, minute or second."""
    if unit == "y":
        return instant.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    if unit == "M":
        return instant.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    day_start = instant.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "w":
        return day_start - timedelta(days=instant.weekday())
    if unit == "d":
        return day_start
    if unit in ("h", "H"):
        return instant.replace(minute=0, second=0, microsecond=0)
    if unit == "m":
        return instant.replace(second=0, microsecond=0)
    return instant.replace(microsecond=0)


def _shift(instant: datetime, amount: int, unit: str) -> datetime:
    if unit in _FIXED_UNITS:
        return instant + amount * _FIXED_UNITS[unit]

    months = amount * 12 if unit == "y" else amount
    month_index = instant.year * 12 + instant.month - 1 + months
    year, month = divmod(month_index, 12)
    if not 1 <= year <= 9999:
        raise DateMathError("date math leaves the supported range of years")
    # A month step from the 31st lands on the last day of a shorter month, as Java time does.
    day = min(instant.day, calendar.monthrange(year, month + 1)[1])
    return instant.replace(year=year, month=month + 1, day=day)


def _parse_absolute(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise DateMathError(f"cannot parse date {text!r}; use ISO 8601 or 'now'") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
