"""Hourly export of one application's logs to object storage.

Every hour, the records the application ``atr`` logged during the hour that just ended (the
run's data interval, start included, end excluded) are scrolled from the Central Monitoring
API and written as gzipped JSON Lines parts followed by a ``_manifest.json``, under::

    <export path>/atr/<start>_<end>/<query hash>/

Running an hour again replaces that hour's files, so reruns and backfills are safe.

The export path is the Airflow Variable ``centralmon_export_path``: any object storage URL
Airflow understands, such as ``s3://aws_default@my-bucket/centralmon`` (with the Amazon
provider) or ``file:///data/centralmon``. Without it, files go to the local folder
``$AIRFLOW_HOME/centralmon-exports``.

Failed calls to the API are retried inside the task, with backoff, a few times. For a run to
also survive a longer outage, add Airflow retries (``default_args={"retries": 2}``); they are
left out here so that ``airflow dags test`` reports a failure at once instead of waiting.

Try it against ``centralmon-simulator`` (``make demo`` does it all): ``airflow dags test
centralmon_hourly_export "$(date -u +%Y-%m-%dT%H:00:00+00:00)"`` exports the last full hour
before that instant.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

try:  # Airflow 3
    from airflow.sdk import DAG, CronDataIntervalTimetable, task
except ImportError:  # Airflow 2.11
    from airflow import DAG
    from airflow.decorators import task
    from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_centralmon.operators.logs import CentralMonitoringLogsToStorageOperator

LOCAL_EXPORTS = (
    Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser() / "centralmon-exports"
)
# Jinja reads the Variable when the task runs, not each time the scheduler parses this file.
EXPORT_PATH = "{{ var.value.get('centralmon_export_path', '" + LOCAL_EXPORTS.as_uri() + "') }}"

with DAG(
    dag_id="centralmon_hourly_export",
    description="Export the last hour of atr logs to object storage",
    # Not "@hourly": on Airflow 3 a cron string gives runs whose data interval has no length
    # (start equals end), and an export needs the hour that just ended as its window.
    schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["centralmon", "example"],
) as dag:
    export = CentralMonitoringLogsToStorageOperator(
        task_id="export_atr_logs",
        application="atr",
        # start and end default to the run's data interval: [hh:00, hh+1:00).
        output_path=EXPORT_PATH,
        compression="gzip",
        centralmon_conn_id="centralmon_default",
    )

    @task
    def report(manifest: dict[str, Any]) -> None:
        """Log where the hour's export is and how many records it holds."""
        counts = manifest["counts"]
        print(
            f"{counts['records']} records of {manifest['window']['start']} to "
            f"{manifest['window']['end']} in {len(manifest['parts'])} part(s) at "
            f"{manifest['path']}"
        )

    report(export.output)
