from __future__ import annotations

from datetime import UTC, datetime

import pytest

from airflow_provider_centralmon._records import (
    make_time_reader,
    parse_record_time,
    time_from_us,
    time_to_us,
)

T = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
T_US = time_to_us(T)


@pytest.mark.parametrize(
    ("value", "expected_us"),
    [
        ("2026-12-01T10:00:00Z", T_US),
        ("2026-12-01T10:00:00+00:00", T_US),
        ("2026-12-01T12:00:00+02:00", T_US),
        ("2026-12-01T05:30:00-0430", T_US),
        ("2026-12-01 10:00:00Z", T_US),
        ("2026-12-01T10:00:00.123Z", T_US + 123_000),
        ("2026-12-01T10:00:00.123456Z", T_US + 123_456),
        ("2026-12-01T10:00:00.123456789Z", T_US + 123_456),
        ("2026-12-01T10:00:00,5+00:00", T_US + 500_000),
        ("2026-12-01T10:00:00", T_US),
        (1796119200000, T_US),
        (1796119200000.5, T_US + 500),
        ("1796119200000", T_US),
        ("1796119200123.25", T_US + 123_250),
    ],
)
def test_accepted_formats(value: object, expected_us: int) -> None:
    assert parse_record_time(value) == expected_us


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        "",
        "not a date",
        "2026-13-01T00:00:00Z",
        {"a": 1},
        [1],
        float("nan"),
        # Digits of other scripts pass str.isdigit() or float(), but are no epoch millis.
        "²",
        "1796119200000²",
        "\uff11\uff17\uff19\uff16\uff10\uff10\uff10",  # fullwidth digits
        "١٧٩٦١١٩٢٠٠٠٠٠",
        "1_796_119_200_000",
        "NaN",
        "infinity",
    ],
)
def test_unreadable_times_are_none(value: object) -> None:
    assert parse_record_time(value) is None


def test_times_outside_the_calendar_are_none() -> None:
    assert parse_record_time(10**20) is None
    assert parse_record_time("99999999999999999") is None
    assert parse_record_time(float("inf")) is None


def test_microseconds_round_trip() -> None:
    instant = datetime(2026, 12, 1, 10, 0, 0, 999_999, tzinfo=UTC)

    assert time_from_us(time_to_us(instant)) == instant


def test_reader_looks_into_hits_and_nested_objects() -> None:
    read_default = make_time_reader()
    read_nested = make_time_reader("event.created")

    assert read_default({"@timestamp": "x"}) == "x"
    assert read_default({"_id": "1", "_source": {"@timestamp": "y"}}) == "y"
    assert read_nested({"event": {"created": "z"}}) == "z"
    assert read_nested({"_source": {"event": {"created": "w"}}}) == "w"
    assert read_nested({"event.created": "flat"}) == "flat"
    assert read_nested({"event": "not an object"}) is None
    assert read_nested({}) is None


def test_epoch_milliseconds_match_the_calendar() -> None:
    assert parse_record_time(1796119200000) == int(T.timestamp()) * 1_000_000
