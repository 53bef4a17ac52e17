"""The waiting classes take their ``deferrable`` default from Airflow's configuration."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

CONSTRUCT_ALL = """
import json
from airflow_provider_centralmon.operators.batch import CentralMonitoringBatchExportOperator
from airflow_provider_centralmon.sensors.batch import CentralMonitoringBatchSensor
from airflow_provider_centralmon.sensors.logs import CentralMonitoringLogsSensor

tasks = [
    CentralMonitoringBatchExportOperator(
        task_id="export", application="atr", output_path="file:///tmp/centralmon"
    ),
    CentralMonitoringBatchSensor(task_id="wait_files", batch_ref="{{ ti.xcom_pull() }}"),
    CentralMonitoringLogsSensor(task_id="wait_logs", application="atr"),
]
print(json.dumps({type(task).__name__: task.deferrable for task in tasks}))
"""


@pytest.mark.parametrize("configured", ["True", "False"])
def test_deferrable_follows_operators_default_deferrable(configured, tmp_path):
    # A fresh interpreter: the default is read from the configuration when the module loads.
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path),
        "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": configured,
    }

    done = subprocess.run(
        [sys.executable, "-c", CONSTRUCT_ALL],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )

    defaults = json.loads(done.stdout.strip().splitlines()[-1])
    assert defaults == {
        "CentralMonitoringBatchExportOperator": configured == "True",
        "CentralMonitoringBatchSensor": configured == "True",
        "CentralMonitoringLogsSensor": configured == "True",
    }
