"""How fast records are timed and classified against a window.

Run: ``.venv/bin/python benchmarks/bench_window.py [records]`` (default 300,000). Prints
records per second for reading and parsing the time field alone, and for the whole
per-record path of an export (unwrap the hit, read and parse the time, admit to the window),
for each accepted time format (best of three runs).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from airflow_provider_centralmon._records import unwrap_record
from airflow_provider_centralmon._window import ExportWindow, WindowFilter

REPEATS = 3
START = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
WINDOW = ExportWindow(start=START, end=START + timedelta(hours=1))

FORMATS: dict[str, Callable[[datetime], Any]] = {
    "iso Z, milliseconds": lambda t: t.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    "iso +05:30 offset": lambda t: t.astimezone(
        timezone(timedelta(hours=5, minutes=30))
    ).isoformat(),
    "iso, no fraction": lambda t: t.isoformat(timespec="seconds"),
    "epoch ms int": lambda t: int(t.timestamp() * 1000),
    "epoch ms string": lambda t: str(int(t.timestamp() * 1000)),
}


def make_hits(count: int, render: Callable[[datetime], Any]) -> list[dict[str, Any]]:
    step = timedelta(hours=2) / count
    first = START - timedelta(minutes=30)
    return [
        {
            "_index": "logs",
            "_id": str(number),
            "_source": {"@timestamp": render(first + number * step), "message": "m"},
        }
        for number in range(count)
    ]


def parse_only(hits: list[dict[str, Any]]) -> WindowFilter:
    window_filter = WindowFilter(window=WINDOW)
    for hit in hits:
        window_filter.record_time(hit["_source"])
    return window_filter


def full_path(hits: list[dict[str, Any]]) -> WindowFilter:
    window_filter = WindowFilter(window=WINDOW)
    for hit in hits:
        item = unwrap_record(hit)
        window_filter.admit(window_filter.record_time(item.source), record_id=item.record_id)
    return window_filter


def best_rate(run: Callable[[list[dict[str, Any]]], WindowFilter], hits: list[Any]) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        began = time.perf_counter()
        run(hits)
        best = min(best, time.perf_counter() - began)
    return len(hits) / best


def measure(count: int, name: str, render: Callable[[datetime], Any]) -> None:
    hits = make_hits(count, render)
    counts = full_path(hits).counts
    if counts.untimed or not counts.in_window:
        raise SystemExit(f"{name}: records were not timed as expected: {counts}")

    parse_rate = best_rate(parse_only, hits)
    full_rate = best_rate(full_path, hits)
    print(f"{name:<22} {parse_rate:>14,.0f} {full_rate:>18,.0f}")


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 300_000
    print(f"{count:,} records per format; records per second")
    print(f"{'format':<22} {'read+parse':>14} {'unwrap+parse+admit':>18}")
    for name, render in FORMATS.items():
        measure(count, name, render)


if __name__ == "__main__":
    main()
