"""Peak memory and speed of the export writer for growing record counts.

Run: ``.venv/bin/python benchmarks/bench_writer.py [count ...]`` (default 100000 400000).
Each count runs in a fresh process, which generates records on the fly (none are kept),
passes them through the window filter into an :class:`ExportWriter` on a local ``file://``
directory with the default part and sort-buffer settings, and publishes. It reports the
peak of Python allocations (tracemalloc) during the export and the process's peak resident
memory. Flat figures across counts show that memory does not grow with the number of
records.
"""

from __future__ import annotations

import json
import random
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow_provider_centralmon._output import ExportWriter
from airflow_provider_centralmon._records import unwrap_record
from airflow_provider_centralmon._window import ExportWindow, WindowFilter

START = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
WINDOW = ExportWindow(start=START, end=START + timedelta(hours=1))
QUERY = {"application": "atr", "domain": "bench.example"}


def generate_hits(count: int) -> Iterator[dict[str, Any]]:
    """Hits of about 300 bytes in random order, 5% outside the window."""
    rng = random.Random(count)
    span_ms = int(timedelta(hours=1, minutes=3).total_seconds() * 1000)
    for number in range(count):
        instant = START + timedelta(milliseconds=rng.randrange(span_ms))
        yield {
            "_index": "logs-2026.12.01",
            "_id": f"{number:012d}",
            "_source": {
                "@timestamp": instant.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "level": rng.choice(("INFO", "WARN", "ERROR")),
                "host": f"ip-10-0-{rng.randrange(256)}-{rng.randrange(256)}",
                "message": "request handled " + "x" * rng.randrange(100, 200),
            },
        }


def export(count: int, output: str) -> dict[str, Any]:
    window_filter = WindowFilter(window=WINDOW)
    with ExportWriter(output_path=f"file://{output}", window=WINDOW, query=QUERY) as writer:
        for hit in generate_hits(count):
            item = unwrap_record(hit)
            time_us = window_filter.record_time(item.source)
            if window_filter.admit(time_us, record_id=item.record_id):
                writer.add(item.record, time_us=time_us, record_id=item.record_id)
        return writer.publish(window_filter=window_filter)


def run_one(count: int) -> None:
    # Timed without tracemalloc, which slows allocation-heavy code several times over.
    with tempfile.TemporaryDirectory(prefix="bench-writer-") as output:
        began = time.perf_counter()
        export(count, output)
        elapsed = time.perf_counter() - began

    with tempfile.TemporaryDirectory(prefix="bench-writer-") as output:
        tracemalloc.start()
        result = export(count, output)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

    manifest = result["manifest"]
    print(
        json.dumps(
            {
                "count": count,
                "written": manifest["counts"]["records"],
                "parts": len(manifest["parts"]),
                "sort_runs": result["run"]["export"]["sort_runs_spilled"],
                "seconds": round(elapsed, 2),
                "tracemalloc_peak_mib": round(peak / 2**20, 1),
                "max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            }
        )
    )


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--one":
        run_one(int(sys.argv[2]))
        return

    counts = [int(value) for value in sys.argv[1:]] or [100_000, 400_000]
    header = f"{'records':>9} {'written':>9} {'parts':>5} {'runs':>4} {'seconds':>8}"
    print(f"{header} {'rec/s':>8} {'py peak MiB':>11} {'max RSS MiB':>11}")
    for count in counts:
        child = subprocess.run(
            [sys.executable, __file__, "--one", str(count)],
            capture_output=True,
            text=True,
            check=True,
        )
        row = json.loads(child.stdout.strip().splitlines()[-1])
        rate = row["count"] / row["seconds"]
        print(
            f"{row['count']:>9,} {row['written']:>9,} {row['parts']:>5} {row['sort_runs']:>4} "
            f"{row['seconds']:>8} {rate:>8,.0f} {row['tracemalloc_peak_mib']:>11} "
            f"{row['max_rss_mib']:>11}"
        )


if __name__ == "__main__":
    main()
