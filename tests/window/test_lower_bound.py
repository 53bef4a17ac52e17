from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from airflow_provider_centralmon._window import (
    ExportWindow,
    LowerBoundStyle,
    SendTimeRange,
    request_time_range,
)
from airflow_provider_centralmon.exceptions import InvalidParameterError, StaleTimeRangeError
from airflow_provider_centralmon.simulator.datemath import resolve_lower_bound

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
MARGIN = timedelta(minutes=5)


def window(start: datetime, end: datetime | None = None) -> ExportWindow:
    return ExportWindow(start=start, end=end or start + timedelta(hours=1))


def test_relative_style_counts_whole_minutes_back_plus_the_margin() -> None:
    start = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)

    assert request_time_range(window(start), now=NOW) == "now-3005m"
    assert request_time_range(window(start), now=NOW, style="relative") == "now-3005m"


def test_relative_style_rounds_partial_minutes_up() -> None:
    start = NOW - timedelta(minutes=10, seconds=1)

    assert request_time_range(window(start), now=NOW) == "now-16m"
    assert request_time_range(window(start), now=NOW, clock_skew_margin=timedelta(0)) == "now-11m"


def test_anchored_style_is_start_minus_margin_in_utc_milliseconds() -> None:
    start = datetime(2026, 12, 1, 10, 0, 0, 123999, tzinfo=UTC)

    expression = request_time_range(window(start), now=NOW, style=LowerBoundStyle.ANCHORED)

    assert expression == "2026-12-01T09:55:00.123Z||"


def test_anchored_style_does_not_depend_on_now() -> None:
    start = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    later = NOW + timedelta(days=3)

    first = request_time_range(window(start), now=NOW, style="anchored")

    assert request_time_range(window(start), now=later, style="anchored") == first


@pytest.mark.parametrize("style", ["relative", "anchored"])
@pytest.mark.parametrize(
    "start_before_now",
    [timedelta(seconds=1), timedelta(minutes=59, seconds=59, microseconds=1), timedelta(days=40)],
)
@pytest.mark.parametrize("service_ahead", [-MARGIN, timedelta(0), MARGIN])
def test_the_expression_covers_start_for_any_skew_within_the_margin(
    style: str, start_before_now: timedelta, service_ahead: timedelta
) -> None:
    start = NOW - start_before_now
    expression = request_time_range(window(start, NOW), now=NOW, style=style)

    lower_bound = resolve_lower_bound(expression, NOW + service_ahead)

    assert lower_bound <= start


def test_raw_time_range_is_sent_unchanged() -> None:
    raw = ExportWindow(time_range="now-1d/d")

    assert request_time_range(raw, now=NOW, style="anchored") == "now-1d/d"


def test_unknown_style_and_negative_margin_are_refused() -> None:
    start = NOW - timedelta(hours=1)

    with pytest.raises(InvalidParameterError, match="use one of 'relative', 'anchored'"):
        request_time_range(window(start, NOW), now=NOW, style="absolute")
    with pytest.raises(InvalidParameterError, match="must not be negative"):
        request_time_range(window(start, NOW), now=NOW, clock_skew_margin=-MARGIN)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_a_time_range_sent_again_later_counts_from_the_moment_it_is_sent() -> None:
    clock = Clock(NOW)
    send = SendTimeRange(window(NOW - timedelta(minutes=30), NOW), now=clock)

    first = send()
    clock.now += timedelta(minutes=8)
    again = send()
    send.check_answered()

    assert (first, again, send.sent) == ("now-35m", "now-43m", "now-43m")


def test_a_first_reply_after_the_spare_time_is_refused() -> None:
    clock = Clock(NOW)
    send = SendTimeRange(window(NOW - timedelta(minutes=30), NOW), now=clock)
    send()

    # now-35m leaves five minutes: the service resolving 'now' later misses the start.
    clock.now += MARGIN
    send.check_answered()
    clock.now += timedelta(seconds=1)
    with pytest.raises(StaleTimeRangeError, match="301 s after time_range 'now-35m'"):
        send.check_answered()


def test_bounds_that_do_not_count_from_now_never_go_stale() -> None:
    clock = Clock(NOW)
    anchored = SendTimeRange(window(NOW - timedelta(minutes=30), NOW), now=clock, style="anchored")
    raw = SendTimeRange(ExportWindow(time_range="now-1h"), now=clock)
    anchored()
    raw()

    clock.now += timedelta(days=1)

    anchored.check_answered()
    raw.check_answered()
