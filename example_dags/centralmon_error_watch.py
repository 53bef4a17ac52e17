"""Every 15 minutes, wait for error logs of the past hour, fetch them and summarise them.

1. ``wait_for_errors``: a sensor waits until at least one ``ERROR`` record of the
   application ``atr`` exists in the window. It waits in Airflow's triggerer
   (``deferrable=True``), checking every 5 minutes; every check spends API quota. With no
   error after 30 minutes it gives up and skips the rest of the run (``soft_fail``): no
   errors, nothing to report.
2. ``fetch_errors``: the error records of the window, returned as the task's XCom value
   (at most ``max_records``; larger windows belong in object storage, see the export DAGs).
3. ``summarise``: counts the errors per service and per level, with the first and last time.

The window is templated: the hour that ends at the end of the run's data interval, so each
run looks at the latest hour although runs are 15 minutes apart.

Try it against ``centralmon-simulator``: ``airflow dags test centralmon_error_watch
"$(date -u +%Y-%m-%dT%H:00:00+00:00)"`` looks at the errors of the last full hour.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

try:  # Airflow 3
    from airflow.sdk import DAG, CronDataIntervalTimetable, task
except ImportError:  # Airflow 2.11
    from airflow import DAG
    from airflow.decorators import task
    from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_centralmon.operators.logs import CentralMonitoringLogsOperator
from airflow_provider_centralmon.sensors.logs import CentralMonitoringLogsSensor

# What both tasks search: atr's error records of the hour before the data interval's end.
ERRORS_OF_THE_PAST_HOUR: dict[str, Any] = {
    "application": "atr",
    "filters": {"level": "ERROR"},
    "start": "{{ data_interval_end - macros.timedelta(hours=1) }}",
    "end": "{{ data_interval_end }}",
    "centralmon_conn_id": "centralmon_default",
}

with DAG(
    dag_id="centralmon_error_watch",
    description="Summarise the last hour of atr error logs, every 15 minutes",
    # A timetable with real data intervals on Airflow 2 and 3 alike (see the export DAGs).
    schedule=CronDataIntervalTimetable("*/15 * * * *", timezone="UTC"),
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["centralmon", "example"],
) as dag:
    wait_for_errors = CentralMonitoringLogsSensor(
        task_id="wait_for_errors",
        **ERRORS_OF_THE_PAST_HOUR,
        min_records=1,
        deferrable=True,
        poke_interval=timedelta(minutes=5),
        timeout=timedelta(minutes=30),
        soft_fail=True,
    )

    fetch_errors = CentralMonitoringLogsOperator(
        task_id="fetch_errors",
        **ERRORS_OF_THE_PAST_HOUR,
        max_records=2000,
    )

    @task
    def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
        """Return the number of error records per service and per level, and their span."""
        times = sorted(record["@timestamp"] for record in records if "@timestamp" in record)
        summary = {
            "records": len(records),
            "by_service": dict(Counter(record.get("service", "?") for record in records)),
            "by_level": dict(Counter(record.get("level", "?") for record in records)),
            "first": times[0] if times else None,
            "last": times[-1] if times else None,
        }
        print(f"Error summary: {summary}")
        return summary

    wait_for_errors >> fetch_errors
    summarise(fetch_errors.output)
