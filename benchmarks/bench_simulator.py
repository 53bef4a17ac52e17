"""Measure how many records per second the simulator serves as scroll pages over HTTP.

Starts ``centralmon-simulator`` in a subprocess (so the server has a core of its own),
fetches a token, then scrolls one application's whole day with keep-alive HTTP and prints
records/s and MB/s: once cold (records generated on the fly) and then warm (cached).

    .venv/bin/python benchmarks/bench_simulator.py [--records 300000] [--page-size 1000]
"""

from __future__ import annotations

import argparse
import http.client
import json
import subprocess
import sys
import time
from urllib.parse import urlencode

import msgspec

_DECODER = msgspec.json.Decoder()


def start_simulator(records: int) -> tuple[subprocess.Popen[str], int]:
    command = [
        sys.executable,
        "-m",
        "airflow_provider_centralmon.simulator.cli",
        "--port",
        "0",
        "--records",
        str(records),
        "--span",
        "1d",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        if "base URL:" in line:
            return process, int(line.rsplit(":", 1)[1])
    raise RuntimeError("the simulator printed no base URL")


def token(connection: http.client.HTTPConnection) -> str:
    form = urlencode(
        {
            "grant_type": "client_credentials",
            "client_id": "centralmon-sim-client",
            "client_secret": "centralmon-sim-secret",
        }
    )
    connection.request(
        "POST", "/oauth2/token", form, {"Content-Type": "application/x-www-form-urlencoded"}
    )
    return str(json.loads(connection.getresponse().read())["access_token"])


def scroll_all(
    connection: http.client.HTTPConnection, access: str, page_size: int
) -> tuple[int, int]:
    headers = {"Authorization": f"Bearer {access}", "Content-Type": "application/json"}
    body: dict[str, object] = {"application": "atr", "time_range": "now-1d", "size": page_size}
    records = size = 0
    while True:
        connection.request("POST", "/v1/logs/scroll", json.dumps(body), headers)
        raw = connection.getresponse().read()
        page = _DECODER.decode(raw)
        records += len(page["logs"])
        size += len(raw)
        if not page["has_more"]:
            return records, size
        body = {"scroll_id": page["scroll_id"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300_000, help="records over all apps")
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3, help="warm rounds to average")
    args = parser.parse_args()

    started = time.perf_counter()
    process, port = start_simulator(args.records)
    print(f"simulator up in {time.perf_counter() - started:.2f} s")
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        access = token(connection)
        for label in ["cold"] + ["warm"] * args.rounds:
            began = time.perf_counter()
            records, size = scroll_all(connection, access, args.page_size)
            elapsed = time.perf_counter() - began
            print(
                f"{label}: {records} records, {size / 1e6:.1f} MB in {elapsed:.2f} s = "
                f"{records / elapsed:,.0f} records/s, {size / 1e6 / elapsed:.1f} MB/s"
            )
    finally:
        process.terminate()
        process.wait(timeout=10)


if __name__ == "__main__":
    main()
