"""Peak memory of CentralMonitoringLogsToStorageOperator for growing record counts.

Run: ``.venv/bin/python benchmarks/bench_export_memory.py [count ...]`` (default 50000
200000). A ``centralmon-simulator`` process serves two hours of ATR logs (enough for the
largest count) on its real clock. Each count then runs in a fresh process that exports a
window holding that many records, through ``execute()`` with the default part, sort and
compression settings, onto a local ``file://`` directory: once timed, once under tracemalloc.
It reports the peak of Python allocations during the export and the process's peak resident
memory (which includes Airflow itself). Flat figures across counts show that memory does not
grow with the number of records.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from typing import Any

SPAN = timedelta(hours=2)
APPLICATIONS = 4  # the simulator spreads --records over its four applications
PAGE_SIZE = 10_000


def start_simulator(records_per_application: int) -> tuple[subprocess.Popen[str], str]:
    command = [
        sys.executable,
        "-m",
        "airflow_provider_centralmon.simulator.cli",
        "--port",
        "0",
        "--records",
        str(records_per_application * APPLICATIONS),
        "--span",
        "2h",
        "--quota",
        "/v2/logs/scroll=none",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("export AIRFLOW_CONN_CENTRALMON_DEFAULT="):
            return process, line.split("=", 1)[1].strip().strip("'")
    raise RuntimeError("the simulator printed no connection")


def window_of(count: int, largest: int) -> tuple[datetime, datetime]:
    """A window ending a minute before the dataset's end that holds about ``count`` records."""
    dataset_end = datetime.now(UTC).replace(second=0, microsecond=0)
    end = dataset_end - timedelta(minutes=1)
    records_per_second = largest / SPAN.total_seconds()
    return end - timedelta(seconds=count / records_per_second), end


def export(start: datetime, end: datetime, output: str) -> dict[str, Any]:
    from airflow_provider_centralmon.operators.logs import CentralMonitoringLogsToStorageOperator

    operator = CentralMonitoringLogsToStorageOperator(
        task_id="bench",
        application="atr",
        start=start,
        end=end,
        output_path=f"file://{output}",
        page_size=PAGE_SIZE,
    )
    result: dict[str, Any] = operator.execute({})
    return result


def run_one(start: datetime, end: datetime) -> None:
    # Timed without tracemalloc, which slows allocation-heavy code several times over.
    with tempfile.TemporaryDirectory(prefix="bench-export-") as output:
        began = time.perf_counter()
        export(start, end, output)
        elapsed = time.perf_counter() - began

    with tempfile.TemporaryDirectory(prefix="bench-export-") as output:
        tracemalloc.start()
        result = export(start, end, output)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

    print(
        json.dumps(
            {
                "written": result["counts"]["records"],
                "received": result["run"]["search"]["records_received"],
                "pages": result["run"]["search"]["pages"],
                "parts": len(result["parts"]),
                "sort_runs": result["run"]["export"]["sort_runs_spilled"],
                "seconds": round(elapsed, 2),
                "tracemalloc_peak_mib": round(peak / 2**20, 1),
                "max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            }
        )
    )


def main() -> None:
    if len(sys.argv) > 3 and sys.argv[1] == "--one":
        run_one(datetime.fromisoformat(sys.argv[2]), datetime.fromisoformat(sys.argv[3]))
        return

    counts = [int(value) for value in sys.argv[1:]] or [50_000, 200_000]
    largest = max(counts)
    # A little more than the largest window, so that it lies inside the span.
    simulator, connection = start_simulator(int(largest * 1.05))
    env = {**os.environ, "AIRFLOW_CONN_CENTRALMON_DEFAULT": connection}
    header = f"{'records':>9} {'received':>9} {'pages':>5} {'parts':>5} {'runs':>4}"
    print(f"{header} {'seconds':>8} {'rec/s':>8} {'py peak MiB':>11} {'max RSS MiB':>11}")
    try:
        for count in counts:
            start, end = window_of(count, int(largest * 1.05))
            child = subprocess.run(
                [sys.executable, __file__, "--one", start.isoformat(), end.isoformat()],
                capture_output=True,
                text=True,
                check=True,
                env=env,
            )
            row = json.loads(child.stdout.strip().splitlines()[-1])
            rate = row["written"] / row["seconds"]
            print(
                f"{row['written']:>9,} {row['received']:>9,} {row['pages']:>5} "
                f"{row['parts']:>5} {row['sort_runs']:>4} {row['seconds']:>8} {rate:>8,.0f} "
                f"{row['tracemalloc_peak_mib']:>11} {row['max_rss_mib']:>11}"
            )
    finally:
        simulator.terminate()
        simulator.wait(timeout=10)


if __name__ == "__main__":
    main()
