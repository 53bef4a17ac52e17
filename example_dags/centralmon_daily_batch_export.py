"""Daily export of a whole day of logs through the service's batch export.

A day of logs can be millions of records, more than scrolling should fetch page by page. The
batch export asks the service to prepare the day's records as files; the task submits it,
then waits in Airflow's triggerer (``deferrable=True``), so that no worker slot is held while
the service works, and finally downloads the files and writes them like the hourly export:
gzipped JSON Lines parts and a ``_manifest.json`` under::

    <export path>/klewer/<day start>_<day end>/<query hash>/

If the task is retried after the service accepted the export, it reconnects to that export
instead of submitting (and paying quota for) a new one.

The export path is the Airflow Variable ``centralmon_export_path`` (an object storage URL such
as ``s3://aws_default@my-bucket/centralmon``); without it, files go to the local folder
``$AIRFLOW_HOME/centralmon-exports``.

Try it against ``centralmon-simulator --span 2d``: ``airflow dags test
centralmon_daily_batch_export "$(date -u +%Y-%m-%dT00:00:00+00:00)"`` exports yesterday,
00:00 to 24:00 UTC (the last full day before that instant).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

try:  # Airflow 3
    from airflow.sdk import DAG, CronDataIntervalTimetable, task
except ImportError:  # Airflow 2.11
    from airflow import DAG
    from airflow.decorators import task
    from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_centralmon.operators.batch import CentralMonitoringBatchExportOperator

LOCAL_EXPORTS = (
    Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser() / "centralmon-exports"
)
# Jinja reads the Variable when the task runs, not each time the scheduler parses this file.
EXPORT_PATH = "{{ var.value.get('centralmon_export_path', '" + LOCAL_EXPORTS.as_uri() + "') }}"

with DAG(
    dag_id="centralmon_daily_batch_export",
    description="Export yesterday's klewer logs through the batch export",
    # Not "@daily": on Airflow 3 a cron string gives runs whose data interval has no length,
    # and this export needs the day that just ended as its window.
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["centralmon", "example"],
) as dag:
    export = CentralMonitoringBatchExportOperator(
        task_id="export_klewer_day",
        application="klewer",
        # start and end default to the run's data interval: the whole previous day.
        output_path=EXPORT_PATH,
        deferrable=True,
        # The service prepares large exports in minutes to hours: check now and then.
        poll_interval=timedelta(minutes=2),
        batch_timeout=timedelta(hours=6),
        centralmon_conn_id="centralmon_default",
    )

    @task
    def report(manifest: dict[str, Any]) -> None:
        """Log where the day's export is and how large it is."""
        print(
            f"{manifest['counts']['records']} records, {len(manifest['parts'])} part(s), "
            f"{manifest['bytes']} bytes at {manifest['path']}"
        )

    report(export.output)
