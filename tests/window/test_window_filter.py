from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from airflow_provider_centralmon._records import unwrap_record
from airflow_provider_centralmon._window import ExportWindow, WindowCounts, WindowFilter
from airflow_provider_centralmon.exceptions import (
    InvalidParameterError,
    ProtocolError,
    RecordTimeError,
)

START = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
END = datetime(2026, 12, 1, 11, 0, tzinfo=UTC)
WINDOW = ExportWindow(start=START, end=END)
ONE_US = timedelta(microseconds=1)


def at(instant: datetime) -> dict[str, Any]:
    return {"@timestamp": instant.isoformat(), "message": "m"}


def admitted(window_filter: WindowFilter, records: list[dict[str, Any]]) -> list[bool]:
    return [window_filter.admit(window_filter.record_time(record)) for record in records]


def test_start_is_in_and_end_is_out() -> None:
    window_filter = WindowFilter(window=WINDOW)
    records = [at(START - ONE_US), at(START), at(END - ONE_US), at(END)]

    assert admitted(window_filter, records) == [False, True, True, False]
    assert window_filter.counts == WindowCounts(in_window=2, before_window=1, after_window=1)
    assert window_filter.counts.trimmed == 2


def test_offsets_are_compared_as_instants() -> None:
    window_filter = WindowFilter(window=WINDOW)
    just_before = {"@timestamp": "2026-12-01T12:59:59.999+02:00"}
    at_end = {"@timestamp": "2026-12-01T13:00:00+02:00"}

    assert admitted(window_filter, [just_before, at_end]) == [True, False]


def test_untimed_records_are_kept_and_counted_by_default() -> None:
    window_filter = WindowFilter(window=WINDOW)

    assert admitted(window_filter, [{"message": "no time"}, {"@timestamp": "soon"}]) == [
        True,
        True,
    ]
    assert window_filter.counts == WindowCounts(untimed_kept=2)
    assert window_filter.counts.kept == 2


@pytest.mark.parametrize(("policy", "kept"), [("keep", True), ("drop", False)])
def test_a_superscript_digit_is_untimed(policy: str, kept: bool) -> None:
    window_filter = WindowFilter(window=WINDOW, untimed_policy=policy)

    assert admitted(window_filter, [{"@timestamp": "²"}]) == [kept]
    assert window_filter.counts.untimed == 1


def test_a_superscript_digit_fails_as_an_untimed_record() -> None:
    window_filter = WindowFilter(window=WINDOW, untimed_policy="fail")

    with pytest.raises(RecordTimeError):
        admitted(window_filter, [{"@timestamp": "²"}])


def test_untimed_records_can_be_dropped() -> None:
    window_filter = WindowFilter(window=WINDOW, untimed_policy="drop")

    assert admitted(window_filter, [{"message": "no time"}, at(START)]) == [False, True]
    assert window_filter.counts == WindowCounts(in_window=1, untimed_dropped=1)


def test_untimed_records_can_fail_the_export_as_a_data_error() -> None:
    window_filter = WindowFilter(
        window=WINDOW, timestamp_field="event.created", untimed_policy="fail"
    )
    item = unwrap_record({"_id": "abc", "_source": {"event": {"created": None}}})

    with pytest.raises(RecordTimeError) as caught:
        window_filter.admit(window_filter.record_time(item.source), record_id=item.record_id)

    assert isinstance(caught.value, ProtocolError)
    assert (caught.value.field, caught.value.record_id) == ("event.created", "abc")
    assert "record 'abc' has no readable time in field 'event.created'" in str(caught.value)
    assert "set untimed_records to 'keep' or 'drop'" in str(caught.value)


def test_record_time_error_survives_pickling() -> None:
    error = RecordTimeError("no time", field="ts", record_id="r1")

    copy = pickle.loads(pickle.dumps(error))

    assert (type(copy), copy.field, copy.record_id, str(copy)) == (
        RecordTimeError,
        "ts",
        "r1",
        "no time",
    )


def test_hits_are_read_through_their_source() -> None:
    window_filter = WindowFilter(window=WINDOW)

    assert window_filter.admit(window_filter.record_time({"_id": "1", "_source": at(START)}))


def test_raw_time_range_keeps_every_timed_record() -> None:
    window_filter = WindowFilter(window=ExportWindow(time_range="now-15m"))

    assert admitted(window_filter, [at(START - timedelta(days=400)), at(END)]) == [True, True]


def test_settings_are_checked() -> None:
    with pytest.raises(InvalidParameterError, match="use one of 'keep', 'drop', 'fail'"):
        WindowFilter(window=WINDOW, untimed_policy="ignore")
    with pytest.raises(InvalidParameterError, match="timestamp_field must be"):
        WindowFilter(window=WINDOW, timestamp_field="")


def test_describe_reports_settings_and_counts() -> None:
    window_filter = WindowFilter(window=WINDOW, untimed_policy="drop")
    admitted(window_filter, [at(START), {}])

    assert window_filter.describe() == {
        "timestamp_field": "@timestamp",
        "untimed_policy": "drop",
        "counts": {
            "in_window": 1,
            "before_window": 0,
            "after_window": 0,
            "untimed_kept": 0,
            "untimed_dropped": 1,
        },
    }


class TestUnwrap:
    def test_hit_is_unwrapped_to_its_source_with_its_id(self) -> None:
        hit = {"_index": "logs", "_id": 7, "_source": {"a": 1}}

        item = unwrap_record(hit)

        assert (item.record, item.source, item.record_id) == ({"a": 1}, {"a": 1}, "7")

    def test_hit_metadata_can_be_kept(self) -> None:
        hit = {"_index": "logs", "_id": "x", "_source": {"a": 1}}

        item = unwrap_record(hit, keep_hit_metadata=True)

        assert (item.record, item.source, item.record_id) == (hit, {"a": 1}, "x")

    def test_bare_records_pass_as_they_are(self) -> None:
        record = {"a": 1, "_source": "not an object"}

        assert unwrap_record(record) == (record, record, "")
