"""Each example DAG runs to success with ``airflow dags test`` against the simulator.

The runs share one migrated Airflow home (see ``conftest.py``); each is compared with the
simulator's ground truth for its window, not only with an exit status. The simulator's clock
stands still at the session's start, so "the last full hour" is taken from it.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow_provider_centralmon.simulator.handle import SimulatorHandle

from .conftest import DagRunner


def _last_full_hour(simulator: SimulatorHandle) -> tuple[datetime, datetime]:
    end = simulator.now().astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return end - timedelta(hours=1), end


def _compact(instant: datetime) -> str:
    return instant.strftime("%Y%m%dT%H%M%SZ")


def _iso(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%SZ")


def _only_manifest(exports: Path, application: str, start: datetime, end: datetime) -> Path:
    manifests = list(
        (exports / application / f"{_compact(start)}_{_compact(end)}").glob("*/_manifest.json")
    )
    assert len(manifests) == 1, f"expected one export of the window, found {manifests}"
    return manifests[0]


def _exported_records(directory: Path, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    records = []
    for part in manifest["parts"]:
        with gzip.open(directory / part["name"], "rt", encoding="utf-8") as lines:
            records.extend(json.loads(line) for line in lines)
    return records


def _check_export(
    exports: Path, application: str, start: datetime, end: datetime, expected: list[Any]
) -> dict[str, Any]:
    manifest_path = _only_manifest(exports, application, start, end)
    manifest = json.loads(manifest_path.read_text())
    directory = manifest_path.parent

    assert manifest["window"] == {"start": _iso(start), "end": _iso(end)}
    assert manifest["query"]["application"] == application
    assert manifest["counts"]["records"] == len(expected)
    assert (directory / "_run.json").is_file()
    assert _exported_records(directory, manifest) == [hit["_source"] for hit in expected]
    return manifest


def test_hourly_export_writes_every_record_of_the_hour(
    dag_runner: DagRunner, centralmon_simulator: SimulatorHandle, tmp_path: Path
) -> None:
    start, end = _last_full_hour(centralmon_simulator)

    # On both Airflow versions the run for logical date hh:00 covers [hh-1:00, hh:00).
    dag_runner.dags_test("centralmon_hourly_export", end, centralmon_simulator, tmp_path)

    expected = centralmon_simulator.records_between(start, end, "atr")
    assert expected, "the simulator should hold records in every hour of its day"
    manifest = _check_export(tmp_path, "atr", start, end, expected)
    returned = dag_runner.return_value("centralmon_hourly_export", "export_atr_logs")
    assert returned["counts"] == manifest["counts"]
    assert returned["path"].startswith(tmp_path.as_uri())


def test_daily_batch_export_writes_every_record_of_the_day(
    dag_runner: DagRunner, centralmon_simulator: SimulatorHandle, tmp_path: Path
) -> None:
    end = centralmon_simulator.now().astimezone(UTC).replace(hour=0, minute=0, second=0)
    start = end - timedelta(days=1)

    # The operator defers; ``dags test`` runs the trigger in the same process.
    dag_runner.dags_test("centralmon_daily_batch_export", end, centralmon_simulator, tmp_path)

    # The simulator's records reach back one day from its start, so only the part of the
    # day after that has records (very late in the day, a few minutes' worth).
    expected = centralmon_simulator.records_between(start, end, "klewer")
    _check_export(tmp_path, "klewer", start, end, expected)
    assert centralmon_simulator.counters()["batch_submissions"] == 1


def test_error_watch_summarises_the_errors_of_the_hour(
    dag_runner: DagRunner, centralmon_simulator: SimulatorHandle
) -> None:
    start, end = _last_full_hour(centralmon_simulator)

    dag_runner.dags_test("centralmon_error_watch", end, centralmon_simulator)

    errors = [
        hit["_source"]
        for hit in centralmon_simulator.records_between(start, end, "atr", level="ERROR")
    ]
    assert errors, "the simulator should hold error records in every hour"
    summary = dag_runner.return_value("centralmon_error_watch", "summarise")
    assert summary == {
        "records": len(errors),
        "by_service": dict(Counter(record["service"] for record in errors)),
        "by_level": {"ERROR": len(errors)},
        "first": errors[0]["@timestamp"],
        "last": errors[-1]["@timestamp"],
    }
    sensed = dag_runner.return_value("centralmon_error_watch", "wait_for_errors")
    assert sensed["records_seen"] == 1
    assert sensed["window"] == {"start": _iso(start), "end": _iso(end)}


def test_billing_query_reports_the_ticket_count_of_each_domain(
    dag_runner: DagRunner, centralmon_simulator: SimulatorHandle
) -> None:
    dag_runner.dags_test(
        "centralmon_billing_query", _last_full_hour(centralmon_simulator)[1], centralmon_simulator
    )

    domains = centralmon_simulator.settings.domains
    expected = {
        domain: len(
            centralmon_simulator.expected_ids(
                {"application": "atr", "time_range": "now-1d/d", "domain": domain}
            )
        )
        for domain in domains
    }
    assert all(expected.values())
    assert dag_runner.return_value("centralmon_billing_query", "billing_report") == expected
    assert centralmon_simulator.counters()["routes"]["/v1/query"]["calls"] == len(domains)
