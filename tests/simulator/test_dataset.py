from __future__ import annotations

from airflow_provider_centralmon.simulator.dataset import Dataset, RecordFilter

DAY_MS = 86_400_000


def _dataset(seed: int = 1) -> Dataset:
    return Dataset(
        seed=seed,
        applications=("atr", "eventops"),
        domains=("d1", "d2"),
        start_ms=DAY_MS * 20_000,
        end_ms=DAY_MS * 20_000 + 6 * 3_600_000,
        records_per_minute=20,
    )


def test_records_are_the_same_whatever_is_asked_first():
    first, second = _dataset(), _dataset()
    late = (DAY_MS * 20_000 + 5 * 3_600_000, DAY_MS * 20_000 + 6 * 3_600_000)
    second.select(RecordFilter("atr"), *late)

    everything = [r.hit for r in first.select(RecordFilter("atr"), 0, 2**62)]
    tail = [r.hit for r in second.select(RecordFilter("atr"), *late)]

    assert everything[-len(tail) :] == tail
    assert [r.hit for r in second.select(RecordFilter("atr"), 0, 2**62)] == everything


def test_seed_changes_the_records():
    assert [r.hit for r in _dataset(1).select(RecordFilter("atr"), 0, 2**62)] != [
        r.hit for r in _dataset(2).select(RecordFilter("atr"), 0, 2**62)
    ]


def test_density_and_span():
    records = _dataset().select(RecordFilter("atr"), 0, 2**62)

    assert 6 * 60 * 20 * 0.95 < len(records) < 6 * 60 * 20 * 1.05
    assert records[0].ts_ms >= DAY_MS * 20_000
    assert records[-1].ts_ms < DAY_MS * 20_000 + 6 * 3_600_000


def test_eventops_records_carry_its_fields():
    record = _dataset().select(RecordFilter("eventops"), 0, 2**62)[0]

    source = record.as_hit()["_source"]
    assert {"log_group", "tenant", "stage"} <= set(source)
    assert record.field("tenant") == source["tenant"]
    assert record.field("trace_id") == source["trace_id"]


def test_unknown_application_has_no_records():
    assert _dataset().select(RecordFilter("klewer"), 0, 2**62) == []
