"""Throughput of the batch export's parallel download, and of a whole batch export task.

Starts ``centralmon-simulator`` in a subprocess (so the server has a core of its own), with a
latency added to every presigned file download to stand in for S3's time to first byte.
Submits one export of one application's records, then:

1. downloads its files with :class:`BatchDownload` at several concurrencies, the consumer
   only counting records, and prints records/s;
2. runs ``CentralMonitoringBatchExportOperator`` (download, window filter, sort, gzip parts,
   publish to a local directory) and prints records/s end to end.

Before that, without the network, it splits batch files held in memory into their hits, as a
download does, and prints hits/s: plain hits, hits whose message embeds a JSON document (whose
brackets the splitter must not take for the hit's own), and one large deeply nested hit.

    .venv/bin/python benchmarks/bench_batch_export.py [--records 300000] [--latency 0.5]
    .venv/bin/python benchmarks/bench_batch_export.py --split-only
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

APPLICATIONS = 4


def start_simulator(records: int, file_records: int, latency_s: float) -> tuple[Any, str]:
    command = [
        sys.executable,
        "-m",
        "airflow_provider_centralmon.simulator.cli",
        "--port",
        "0",
        "--records",
        str(records * APPLICATIONS),
        "--span",
        "6h",
        "--batch-file-records",
        str(file_records),
        "--fault",
        f"/_s3/*=latency,latency_s={latency_s}",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        if "base URL:" in line:
            return process, line.split("base URL:", 1)[1].strip()
    raise RuntimeError("the simulator printed no base URL")


def connect(base_url: str) -> None:
    os.environ["AIRFLOW_CONN_CENTRALMON_DEFAULT"] = json.dumps(
        {
            "conn_type": "centralmon",
            "host": base_url,
            "login": "centralmon-sim-client",
            "password": "centralmon-sim-secret",
            "extra": {"auth_url": base_url + "/oauth2/token"},
        }
    )


def split_rates() -> None:
    from airflow_provider_centralmon.hooks._batch_files import JsonArraySplitter
    from airflow_provider_centralmon.hooks.centralmon import DOWNLOAD_CHUNK_BYTES

    source = {"@timestamp": "2026-11-30T00:00:00.123Z", "level": "INFO", "service": "api"}
    embedded = json.dumps([{"id": i, "v": "x"} for i in range(400)])  # about 8 KiB
    files = {
        "100,000 plain hits": [
            {"_index": "logs", "_id": str(i), "_source": {**source, "message": f"call {i}"}}
            for i in range(100_000)
        ],
        "5,000 hits, 8 KiB JSON in message": [
            {"_index": "logs", "_id": str(i), "_source": {**source, "message": embedded}}
            for i in range(5_000)
        ],
        "1 hit of 16,000 nested objects": [
            {"_id": "1", "_source": {**source, "spans": [{"i": i} for i in range(16_000)]}}
        ],
    }
    for label, hits in files.items():
        data = json.dumps(hits).encode()
        began = time.perf_counter()
        splitter = JsonArraySplitter("bench")
        count = 0
        for start in range(0, len(data), DOWNLOAD_CHUNK_BYTES):
            count += len(splitter.feed(data[start : start + DOWNLOAD_CHUNK_BYTES]))
        splitter.close()
        elapsed = time.perf_counter() - began
        print(
            f"split, {label} ({len(data) / 1e6:.1f} MB): {count} hits in {elapsed:.3f} s = "
            f"{count / elapsed:,.0f} hits/s, {len(data) / elapsed / 1e6:.0f} MB/s"
        )


def download_rates(concurrencies: list[int]) -> None:
    from airflow_provider_centralmon._batch_download import BatchDownload
    from airflow_provider_centralmon.hooks.centralmon import CentralMonitoringHook

    with CentralMonitoringHook() as hook:
        token = hook.submit_batch({"application": "atr", "time_range": "now-6h"}).batch_token
        for concurrency in concurrencies:
            status = hook.get_batch_files(token)
            began = time.perf_counter()
            records = 0
            download = BatchDownload(
                files=status.files,
                new_hook=CentralMonitoringHook,
                list_files=lambda: hook.get_batch_files(token),
                max_concurrency=concurrency,
            )
            for delivery in download.deliveries():
                records += len(delivery.records)
            elapsed = time.perf_counter() - began
            print(
                f"download, {len(status.files)} files, concurrency {concurrency}: {records} "
                f"records in {elapsed:.2f} s = {records / elapsed:,.0f} records/s"
            )


def export_rate(concurrency: int) -> None:
    from airflow_provider_centralmon.operators.batch import CentralMonitoringBatchExportOperator

    end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)
    ti = SimpleNamespace(
        dag_id="bench", task_id="export", run_id="bench", map_index=-1, try_number=1
    )
    ti.xcom_push = lambda key, value: None
    with tempfile.TemporaryDirectory() as output:
        task = CentralMonitoringBatchExportOperator(
            task_id="export",
            application="atr",
            start=end - timedelta(hours=5),
            end=end,
            output_path=f"file://{output}",
            deferrable=False,
            download_concurrency=concurrency,
            poll_interval=0.5,
            durable=False,
        )
        began = time.perf_counter()
        result = task.execute({"ti": ti})
        elapsed = time.perf_counter() - began
    records = result["counts"]["records"]
    print(
        f"whole export, concurrency {concurrency}: {records} records published "
        f"({result['run']['batch']['records_downloaded']} downloaded) in {elapsed:.2f} s = "
        f"{records / elapsed:,.0f} records/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300_000, help="records of the export")
    parser.add_argument("--file-records", type=int, default=100_000, help="records per file")
    parser.add_argument("--latency", type=float, default=0.5, help="seconds before each file")
    parser.add_argument("--concurrency", type=int, nargs="*", default=[1, 2, 4])
    parser.add_argument("--split-only", action="store_true", help="only split files in memory")
    args = parser.parse_args()

    split_rates()
    if args.split_only:
        return
    process, base_url = start_simulator(args.records, args.file_records, args.latency)
    try:
        connect(base_url)
        download_rates(args.concurrency)
        export_rate(max(args.concurrency))
    finally:
        process.terminate()
        process.wait(timeout=10)


if __name__ == "__main__":
    main()
