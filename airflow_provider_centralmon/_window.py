"""The time window an export or a check covers, and how it is asked of the service.

A window is the half-open interval ``[start, end)``: a record belongs to it when
``start <= t < end``. By default it is the run's data interval; ``start`` and ``end`` may be
given instead, as timezone-aware datetimes or ISO 8601 strings. A raw ``time_range`` can be
passed through to the service unchanged instead of a window; such an export is not
repeatable, since the service resolves ``now`` in it, and is not trimmed here: it holds the
records the service matched at request time.

The service documents only relative lower bounds for ``time_range`` (OpenSearch date math
such as ``now-15m``), and its upper bound is always its own ``now``. So a window is fetched
with a lower bound that certainly covers ``start``, and the records outside the window are
trimmed here by :class:`WindowFilter`. Two styles build that lower bound:

- ``relative`` (default, the documented form): ``now-<N>m``, with N the minutes from
  ``start`` to the local now, rounded up, plus a safety margin for the clock difference
  between this machine and the service (default 5 minutes). The service resolves ``now``
  when it reads the request, so :class:`SendTimeRange` computes it each time the first
  request is sent, retries included, and fails the search when the reply came later than
  the margin allows.
- ``anchored``: ``<start - margin as ISO 8601 UTC>||``, OpenSearch anchored date math.
  Limitation: the service does not document absolute dates; this style assumes it passes
  ``time_range`` to OpenSearch unchanged, as every documented example suggests. Where it
  does, the request no longer depends on the clock and is repeatable.

Limitation: the service offers no upper bound, so fetching an old window also fetches every
record from its ``end`` up to now, only to trim them here.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from airflow_provider_centralmon._query import known_later
from airflow_provider_centralmon._records import (
    DEFAULT_TIMESTAMP_FIELD,
    make_time_reader,
    parse_record_time,
    time_to_us,
)
from airflow_provider_centralmon.exceptions import (
    InvalidParameterError,
    InvalidWindowError,
    RecordTimeError,
    StaleTimeRangeError,
)

DEFAULT_CLOCK_SKEW_MARGIN = timedelta(minutes=5)
# Clock differences and request times are seconds to minutes; a margin of days would only
# fetch records to trim, and one far larger overflows the datetime arithmetic.
MAX_CLOCK_SKEW_MARGIN = timedelta(days=1)

_ONE_MINUTE = timedelta(minutes=1)
_ISO_EXAMPLE = "2026-12-01T10:00:00Z"

_Choice = TypeVar("_Choice", bound=enum.Enum)


class LowerBoundStyle(enum.Enum):
    """How the lower bound of a window is written into ``time_range``."""

    RELATIVE = "relative"
    ANCHORED = "anchored"


class UntimedPolicy(enum.Enum):
    """What happens to a record whose time field is missing or unreadable."""

    KEEP = "keep"
    DROP = "drop"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class ExportWindow:
    """A window ``[start, end)`` in UTC, or a raw ``time_range`` passed to the service as is.

    Exactly one of the two forms is set. Build it with :func:`resolve_window`.
    """

    start: datetime | None = None
    end: datetime | None = None
    time_range: str | None = None

    @property
    def is_raw(self) -> bool:
        """Whether this is a raw ``time_range``, neither trimmed nor repeatable."""
        return self.time_range is not None

    def describe(self) -> dict[str, str]:
        """Return the window as JSON-ready ISO strings, for manifests and logs."""
        if self.start is None or self.end is None:
            return {"time_range": str(self.time_range)}
        return {"start": _iso_utc(self.start), "end": _iso_utc(self.end)}


def _iso_utc(instant: datetime) -> str:
    text = instant.astimezone(UTC).isoformat(timespec="microseconds")
    return text.replace(".000000", "").replace("+00:00", "Z")


def resolve_window(
    *,
    start: datetime | str | None,
    end: datetime | str | None,
    time_range: str | None,
    data_interval_start: datetime | None,
    data_interval_end: datetime | None,
    now: datetime,
) -> ExportWindow:
    """Return the window of a run, or raise :class:`InvalidWindowError` saying what to set.

    :param start: first instant of the window (inclusive); default: the data interval start
    :param end: end of the window (exclusive); default: the data interval end
    :param time_range: raw OpenSearch date math sent as is instead of a window
    :param data_interval_start: the run's data interval start, or None if it has none
    :param data_interval_end: the run's data interval end, or None if it has none
    :param now: the current instant (timezone-aware); ``end`` may not lie after it
    """
    _check_form(start, end, time_range)
    if time_range is not None:
        return ExportWindow(time_range=_checked_time_range(time_range))

    explicit = start is not None
    if start is None or end is None:
        if data_interval_start is None or data_interval_end is None:
            raise InvalidWindowError(
                "the run has no data interval: set start and end (ISO 8601 with a time zone, "
                f"e.g. {_ISO_EXAMPLE!r}) or a raw time_range"
            )
        start, end = data_interval_start, data_interval_end

    start_at = parse_window_bound(start, name="start")
    end_at = parse_window_bound(end, name="end")
    _check_order(start_at, end_at, explicit=explicit)

    now_at = parse_window_bound(now, name="now")
    if end_at > now_at:
        raise InvalidWindowError(
            f"end {_iso_utc(end_at)} lies in the future (now is {_iso_utc(now_at)}): records "
            "after now do not exist yet; set an end that has passed, or run the task later"
        )
    return ExportWindow(start=start_at, end=end_at)


def check_window_arguments(
    *, start: object = None, end: object = None, time_range: object = None
) -> None:
    """Check literal window arguments when a DAG is parsed; templated values are skipped.

    Raises :class:`InvalidWindowError` for a mix of ``time_range`` with ``start``/``end``,
    one of ``start``/``end`` without the other, naive datetimes, and empty or reversed
    windows. Whether ``end`` lies in the future is only known at run time.
    """
    _check_form(start, end, time_range)
    if time_range is not None:
        if not known_later(time_range):
            _checked_time_range(time_range)
        return

    bounds = {"start": start, "end": end}
    literal = {
        name: parse_window_bound(value, name=name)
        for name, value in bounds.items()
        if isinstance(value, datetime | str) and not known_later(value)
    }
    if len(literal) == 2:
        _check_order(literal["start"], literal["end"], explicit=True)


def _check_form(start: object, end: object, time_range: object) -> None:
    if time_range is not None and (start is not None or end is not None):
        raise InvalidWindowError(
            "set either time_range or start and end, not both: time_range is sent to the "
            "service as is, start and end define the window that is exported"
        )
    if (start is None) != (end is None):
        missing = "end" if end is None else "start"
        raise InvalidWindowError(
            f"{missing} is missing: set both start and end, or neither to use the run's "
            "data interval"
        )


def _checked_time_range(time_range: object) -> str:
    if not isinstance(time_range, str) or not time_range.strip():
        raise InvalidWindowError(
            "time_range must be a non-empty OpenSearch date math string, e.g. 'now-15m'"
        )
    return time_range


def parse_window_bound(value: datetime | str, *, name: str) -> datetime:
    """Return a window bound as a timezone-aware UTC datetime, or raise InvalidWindowError.

    :param value: a datetime, or an ISO 8601 string such as ``2026-12-01T10:00:00Z``
    :param name: the parameter's name, quoted in the error message
    """
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidWindowError(
                f"{name} {value!r} is not an ISO 8601 datetime; write it like {_ISO_EXAMPLE!r}"
            ) from None
    elif isinstance(value, datetime):
        parsed = value
    else:
        raise InvalidWindowError(
            f"{name} must be a datetime or an ISO 8601 string, not {type(value).__name__}"
        )

    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise InvalidWindowError(
            f"{name} {parsed.isoformat()!r} has no time zone: add one (e.g. 'Z' or '+00:00'), "
            "or pass a timezone-aware datetime"
        )
    utc = parsed.astimezone(UTC)
    # Plain datetime: subclasses (pendulum) would compare and print differently.
    return datetime(*utc.timetuple()[:6], utc.microsecond, tzinfo=UTC)


def _check_order(start: datetime, end: datetime, *, explicit: bool) -> None:
    if start > end:
        raise InvalidWindowError(f"start {_iso_utc(start)} is after end {_iso_utc(end)}: swap them")
    if start == end:
        origin = "start equals end" if explicit else "the run's data interval is empty"
        raise InvalidWindowError(
            f"the window is empty ({origin}: {_iso_utc(start)}). Manual runs on Airflow 3 "
            "have a zero-length data interval: pass start and end explicitly, or run the "
            "DAG on a schedule"
        )


def request_time_range(
    window: ExportWindow,
    *,
    now: datetime,
    style: LowerBoundStyle | str = LowerBoundStyle.RELATIVE,
    clock_skew_margin: timedelta = DEFAULT_CLOCK_SKEW_MARGIN,
) -> str:
    """Return the ``time_range`` to send for ``window``; call it right before sending.

    A raw window's ``time_range`` is returned unchanged. Otherwise the expression's instant is
    at least ``clock_skew_margin`` before ``start``, as seen by the service.

    :param window: the window to fetch
    :param now: the current instant on this machine (timezone-aware)
    :param style: ``relative`` (``now-<N>m``, default) or ``anchored`` (``<ISO>||``)
    :param clock_skew_margin: how far the service's clock may run ahead of this one, plus the
        time until the request arrives. Default: 5 minutes.
    """
    return _time_range_and_deadline(window, now, style, clock_skew_margin)[0]


def _time_range_and_deadline(
    window: ExportWindow,
    now: datetime,
    style: LowerBoundStyle | str,
    clock_skew_margin: timedelta,
) -> tuple[str, datetime | None]:
    # The deadline is the local instant past which a service whose clock equals this one
    # would resolve a relative bound after start; other bounds have none.
    chosen = parse_choice(LowerBoundStyle, style, "lower bound style")
    if clock_skew_margin < timedelta(0):
        raise InvalidParameterError("clock_skew_margin must not be negative")
    if window.start is None:
        return str(window.time_range), None

    lower = window.start - clock_skew_margin
    if chosen is LowerBoundStyle.ANCHORED:
        floored = lower.replace(microsecond=lower.microsecond // 1000 * 1000)
        return floored.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z||", None

    now_at = parse_window_bound(now, name="now")
    minutes = max(1, math.ceil((now_at - lower) / _ONE_MINUTE))
    return f"now-{minutes}m", window.start + minutes * _ONE_MINUTE


class SendTimeRange:
    """The ``time_range`` of a window's first request, computed when each attempt is sent.

    Call it to get the expression for the attempt about to be sent (the hooks accept a body
    function for that), then call :meth:`check_answered` once the first page is in. A
    relative bound that was computed long before the service read the request reaches back
    less far than it should; the check turns a reply that came after the margin was used up
    into :class:`StaleTimeRangeError` instead of a window that silently lacks its start.

    :param window: the window to fetch
    :param now: returns the current instant on this machine (timezone-aware)
    :param style: ``relative`` (default) or ``anchored``
    :param clock_skew_margin: as in :func:`request_time_range`. Default: 5 minutes.
    """

    def __init__(
        self,
        window: ExportWindow,
        *,
        now: Callable[[], datetime],
        style: LowerBoundStyle | str = LowerBoundStyle.RELATIVE,
        clock_skew_margin: timedelta = DEFAULT_CLOCK_SKEW_MARGIN,
    ) -> None:
        self.window = window
        self.style = parse_choice(LowerBoundStyle, style, "lower bound style")
        self.clock_skew_margin = clock_skew_margin
        self._now = now
        self.sent: str | None = None
        self._computed_at: datetime | None = None
        self._deadline: datetime | None = None

    def __call__(self) -> str:
        """Return the ``time_range`` for an attempt sent now, and remember when it was made."""
        now = self._now()
        self.sent, self._deadline = _time_range_and_deadline(
            self.window, now, self.style, self.clock_skew_margin
        )
        self._computed_at = now
        return self.sent

    def check_answered(self) -> None:
        """Raise :class:`StaleTimeRangeError` if the first reply came too late for the bound."""
        if self._deadline is None or self._computed_at is None:
            return
        answered_at = self._now()
        if answered_at <= self._deadline:
            return

        waited_s = (answered_at - self._computed_at).total_seconds()
        spare_s = (self._deadline - self._computed_at).total_seconds()
        raise StaleTimeRangeError(
            f"the first page came {waited_s:.0f} s after time_range {self.sent!r} was "
            f"computed, more than the {spare_s:.0f} s it had to spare before the window's "
            "start: the service may have resolved 'now' that late, so records from the start "
            "of the window may be missing. Run the task again; if replies are often this "
            "slow, raise clock_skew_margin or use lower_bound_style='anchored'"
        )


def checked_clock_skew_margin(value: object) -> timedelta:
    """Return a clock skew margin given as a timedelta or seconds, or raise InvalidParameterError.

    :param value: the ``clock_skew_margin`` parameter: 0 to :data:`MAX_CLOCK_SKEW_MARGIN`
    """
    if isinstance(value, bool) or not isinstance(value, timedelta | int | float):
        raise InvalidParameterError(
            "clock_skew_margin must be a timedelta or a number of seconds, "
            f"not {type(value).__name__}"
        )
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if seconds < 0:
        raise InvalidParameterError(f"clock_skew_margin must not be negative, got {value!r}")
    # Written so that NaN fails too, and a huge int is compared without turning it into a float.
    if not seconds <= MAX_CLOCK_SKEW_MARGIN.total_seconds():
        raise InvalidParameterError(
            f"clock_skew_margin must be at most 1 day, got {value!r}: it covers the difference "
            "between this clock and the service's plus the time a request takes, usually a "
            "few minutes (default 5)"
        )
    return value if isinstance(value, timedelta) else timedelta(seconds=seconds)


def parse_choice(kind: type[_Choice], value: _Choice | str, what: str) -> _Choice:
    """Return the member of the enum ``kind`` named by ``value``, or raise listing the choices.

    :param kind: the enum class
    :param value: a member, or its value as a string
    :param what: what the value configures, quoted in the error message
    """
    if isinstance(value, kind):
        return value
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(repr(member.value) for member in kind)
        raise InvalidParameterError(f"{what} {value!r} is unknown; use one of {choices}") from None


@dataclass(frozen=True, slots=True)
class WindowCounts:
    """How the records a window filter saw were classified."""

    in_window: int = 0
    before_window: int = 0
    after_window: int = 0
    untimed_kept: int = 0
    untimed_dropped: int = 0

    @property
    def kept(self) -> int:
        """Records passed on: those in the window and the untimed ones kept."""
        return self.in_window + self.untimed_kept

    @property
    def trimmed(self) -> int:
        """Timed records outside the window."""
        return self.before_window + self.after_window

    @property
    def untimed(self) -> int:
        """Records without a readable time, kept or dropped."""
        return self.untimed_kept + self.untimed_dropped

    def as_dict(self) -> dict[str, int]:
        """Return the counts as a JSON-ready dict."""
        return {
            "in_window": self.in_window,
            "before_window": self.before_window,
            "after_window": self.after_window,
            "untimed_kept": self.untimed_kept,
            "untimed_dropped": self.untimed_dropped,
        }


class WindowFilter:
    """Decide record by record whether it belongs to a window, and count the decisions.

    Call :meth:`record_time` on a record (bare, or a hit whose ``_source`` holds the time),
    then :meth:`admit` with that time.

    :param window: the window records must fall into; a raw ``time_range`` window keeps every
        timed record
    :param timestamp_field: name or dotted path of the record's time field. Default:
        ``@timestamp``.
    :param untimed_policy: what to do with records without a readable time: ``keep``
        (default), ``drop``, or ``fail`` (raise :class:`RecordTimeError`)
    """

    def __init__(
        self,
        *,
        window: ExportWindow,
        timestamp_field: str = DEFAULT_TIMESTAMP_FIELD,
        untimed_policy: UntimedPolicy | str = UntimedPolicy.KEEP,
    ) -> None:
        if not timestamp_field or not isinstance(timestamp_field, str):
            raise InvalidParameterError("timestamp_field must be a non-empty field name")
        self.window = window
        self.timestamp_field = timestamp_field
        self.untimed_policy = parse_choice(UntimedPolicy, untimed_policy, "untimed_policy")
        self._read: Callable[[Mapping[str, Any]], Any] = make_time_reader(timestamp_field)
        self._start_us = None if window.start is None else time_to_us(window.start)
        self._end_us = None if window.end is None else time_to_us(window.end)
        self._in = self._before = self._after = self._untimed_kept = self._untimed_dropped = 0

    def record_time(self, item: Mapping[str, Any]) -> int | None:
        """Return the record's time in microseconds since the epoch, or None if unreadable."""
        return parse_record_time(self._read(item))

    def admit(self, time_us: int | None, *, record_id: str = "") -> bool:
        """Count a record and return whether it is kept.

        :param time_us: the record's time from :meth:`record_time`
        :param record_id: the record's id, only quoted when the untimed policy fails
        """
        if time_us is None:
            return self._admit_untimed(record_id)

        if self._start_us is not None and time_us < self._start_us:
            self._before += 1
            return False
        if self._end_us is not None and time_us >= self._end_us:
            self._after += 1
            return False
        self._in += 1
        return True

    def _admit_untimed(self, record_id: str) -> bool:
        if self.untimed_policy is UntimedPolicy.KEEP:
            self._untimed_kept += 1
            return True
        if self.untimed_policy is UntimedPolicy.DROP:
            self._untimed_dropped += 1
            return False

        which = f"record {record_id!r}" if record_id else "a record"
        raise RecordTimeError(
            f"{which} has no readable time in field {self.timestamp_field!r} (ISO 8601 or "
            "epoch milliseconds expected): fix timestamp_field, or set untimed_records to "
            "'keep' or 'drop'",
            field=self.timestamp_field,
            record_id=record_id or None,
        )

    @property
    def counts(self) -> WindowCounts:
        """The classification so far."""
        return WindowCounts(
            in_window=self._in,
            before_window=self._before,
            after_window=self._after,
            untimed_kept=self._untimed_kept,
            untimed_dropped=self._untimed_dropped,
        )

    def describe(self) -> dict[str, Any]:
        """Return the filter's settings and counts as a JSON-ready dict, for manifests."""
        return {
            "timestamp_field": self.timestamp_field,
            "untimed_policy": self.untimed_policy.value,
            "counts": self.counts.as_dict(),
        }
