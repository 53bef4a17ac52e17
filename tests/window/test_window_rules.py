from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pendulum
import pytest

from airflow_provider_centralmon._window import (
    ExportWindow,
    check_window_arguments,
    resolve_window,
)
from airflow_provider_centralmon.exceptions import InvalidWindowError

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
INTERVAL_START = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
INTERVAL_END = datetime(2026, 12, 1, 11, 0, tzinfo=UTC)


def resolve(**overrides: object) -> ExportWindow:
    arguments: dict[str, object] = {
        "start": None,
        "end": None,
        "time_range": None,
        "data_interval_start": INTERVAL_START,
        "data_interval_end": INTERVAL_END,
        "now": NOW,
    }
    arguments.update(overrides)
    return resolve_window(**arguments)  # type: ignore[arg-type]


def test_defaults_to_the_data_interval() -> None:
    window = resolve()

    assert (window.start, window.end, window.time_range) == (INTERVAL_START, INTERVAL_END, None)
    assert window.describe() == {"start": "2026-12-01T10:00:00Z", "end": "2026-12-01T11:00:00Z"}


def test_explicit_bounds_accept_iso_strings_with_offsets_and_normalise_to_utc() -> None:
    window = resolve(start="2026-12-01T12:00:00+02:00", end="2026-12-01 10:30:00.5Z")

    assert window.start == datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    assert window.end == datetime(2026, 12, 1, 10, 30, 0, 500000, tzinfo=UTC)
    assert window.describe()["end"] == "2026-12-01T10:30:00.500000Z"


def test_pendulum_bounds_become_plain_utc_datetimes() -> None:
    start = pendulum.datetime(2026, 12, 1, 11, 0, tz="Europe/Paris")

    window = resolve(start=start, end=start.add(hours=1))

    assert type(window.start) is datetime
    assert window.start == datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2026-12-01T10:00:00", "2026-12-01T11:00:00Z"),
        (datetime(2026, 12, 1, 10, 0, tzinfo=UTC), datetime(2026, 12, 1, 11, 0)),
    ],
)
def test_naive_bounds_are_refused_with_the_fix(start: object, end: object) -> None:
    with pytest.raises(InvalidWindowError, match=r"has no time zone: add one \(e\.g\. 'Z'"):
        resolve(start=start, end=end)


def test_unparsable_bound_names_the_parameter_and_an_example() -> None:
    with pytest.raises(InvalidWindowError, match=r"end 'yesterday' is not an ISO 8601 datetime"):
        resolve(start="2026-12-01T10:00:00Z", end="yesterday")


def test_bounds_of_other_types_are_refused() -> None:
    with pytest.raises(InvalidWindowError, match="start must be a datetime or an ISO 8601 string"):
        resolve(start=date(2026, 12, 1), end="2026-12-02T00:00:00Z")


def test_reversed_window_is_refused() -> None:
    with pytest.raises(InvalidWindowError, match=r"is after end .*: swap them"):
        resolve(start="2026-12-01T11:00:00Z", end="2026-12-01T10:00:00Z")


def test_zero_length_data_interval_says_to_pass_bounds_or_use_a_schedule() -> None:
    with pytest.raises(InvalidWindowError) as caught:
        resolve(data_interval_start=INTERVAL_END, data_interval_end=INTERVAL_END)

    message = str(caught.value)
    assert "the run's data interval is empty" in message
    assert "pass start and end explicitly" in message
    assert "on a schedule" in message


def test_explicit_zero_length_window_is_refused() -> None:
    with pytest.raises(InvalidWindowError, match="start equals end"):
        resolve(start="2026-12-01T10:00:00Z", end="2026-12-01T10:00:00+00:00")


def test_run_without_data_interval_needs_explicit_bounds() -> None:
    with pytest.raises(InvalidWindowError, match="no data interval: set start and end"):
        resolve(data_interval_start=None, data_interval_end=None)


def test_end_in_the_future_is_refused_relative_to_the_injected_now() -> None:
    end = NOW + timedelta(microseconds=1)

    with pytest.raises(InvalidWindowError, match="lies in the future"):
        resolve(start=NOW - timedelta(hours=1), end=end)

    assert resolve(start=NOW - timedelta(hours=1), end=NOW).end == NOW


@pytest.mark.parametrize(
    ("start", "end"),
    [("2026-12-01T10:00:00Z", None), (None, "2026-12-01T10:00:00Z")],
)
def test_start_and_end_go_together(start: object, end: object) -> None:
    with pytest.raises(InvalidWindowError, match="is missing: set both start and end"):
        resolve(start=start, end=end)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2026-12-01T10:00:00Z", "2026-12-01T11:00:00Z"),
        ("2026-12-01T10:00:00Z", None),
        (None, "2026-12-01T11:00:00Z"),
    ],
)
def test_time_range_excludes_start_and_end(start: object, end: object) -> None:
    with pytest.raises(InvalidWindowError, match="either time_range or start and end"):
        resolve(start=start, end=end, time_range="now-15m")


def test_raw_time_range_passes_through_and_ignores_the_data_interval() -> None:
    window = resolve(time_range="now-1d/d", data_interval_start=None, data_interval_end=None)

    assert window.is_raw
    assert (window.start, window.end, window.time_range) == (None, None, "now-1d/d")


def test_empty_time_range_is_refused() -> None:
    with pytest.raises(InvalidWindowError, match="non-empty OpenSearch date math"):
        resolve(time_range=" ")


class TestParseTimeCheck:
    def test_templated_values_are_skipped(self) -> None:
        check_window_arguments(start="{{ data_interval_start }}", end="{{ params.end }}")
        check_window_arguments(time_range="{{ params.range }}")

    def test_literal_mistakes_are_caught(self) -> None:
        with pytest.raises(InvalidWindowError, match="has no time zone"):
            check_window_arguments(start="2026-12-01T10:00:00", end="{{ params.end }}")
        with pytest.raises(InvalidWindowError, match="swap them"):
            check_window_arguments(start="2026-12-02T00:00:00Z", end="2026-12-01T00:00:00Z")
        same = datetime(2026, 12, 1, tzinfo=timezone(timedelta(hours=1)))
        with pytest.raises(InvalidWindowError, match="start equals end"):
            check_window_arguments(start=same, end=same)

    def test_form_rules_hold_even_for_templated_values(self) -> None:
        with pytest.raises(InvalidWindowError, match="either time_range or start and end"):
            check_window_arguments(start="{{ a }}", end="{{ b }}", time_range="now-1h")
        with pytest.raises(InvalidWindowError, match="end is missing"):
            check_window_arguments(start="{{ a }}")

    def test_valid_literals_and_defaults_pass(self) -> None:
        check_window_arguments()
        check_window_arguments(start="2026-12-01T10:00:00Z", end="2026-12-01T11:00:00Z")
        check_window_arguments(time_range="now-15m")
