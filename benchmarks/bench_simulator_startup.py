"""Measure how long ``centralmon-simulator`` takes to start serving.

Launches the console script installed next to this Python several times, each on a free
port, and times from the launch until the token endpoint has answered a first request.

    .venv/bin/python benchmarks/bench_simulator_startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests

CONSOLE_SCRIPT = Path(sys.executable).parent / "centralmon-simulator"
TARGET_S = 3.0


def time_one_start() -> float:
    """Start the simulator, fetch one token, stop it; return the seconds until the token."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(CONSOLE_SCRIPT), "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        base_url = next(
            line.split(":", 1)[1].strip() for line in process.stdout if "base URL:" in line
        )
        reply = requests.post(
            f"{base_url}/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "centralmon-sim-client",
                "client_secret": "centralmon-sim-secret",
            },
            timeout=10,
        )
        reply.raise_for_status()
        return time.perf_counter() - started
    finally:
        process.terminate()
        process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs

    timings = [time_one_start() for _ in range(runs)]

    print(f"centralmon-simulator, launch to first token, {runs} runs:")
    print(f"  median {statistics.median(timings):.2f} s, worst {max(timings):.2f} s")
    verdict = "within" if max(timings) < TARGET_S else "OVER"
    print(f"  {verdict} the {TARGET_S:.0f} s target")


if __name__ == "__main__":
    main()
