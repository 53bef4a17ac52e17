"""The example DAGs parse on the installed Airflow (2.11 or 3) without errors or warnings."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import EXAMPLE_DAGS

EXPECTED_TASKS = {
    "centralmon_hourly_export": {"export_atr_logs", "report"},
    "centralmon_daily_batch_export": {"export_klewer_day", "report"},
    "centralmon_error_watch": {"wait_for_errors", "fetch_errors", "summarise"},
    "centralmon_billing_query": {"count_tickets", "billing_report"},
}


def _load_example_dags() -> Any:
    try:  # Airflow 3: examples are loaded only when [core] load_examples says so
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 2.11
        from airflow.models.dagbag import DagBag

        return DagBag(dag_folder=str(EXAMPLE_DAGS), include_examples=False)
    return DagBag(dag_folder=str(EXAMPLE_DAGS))


@pytest.fixture(scope="module")
def dag_bag() -> Any:
    # pytest turns warnings into errors, so a deprecated import in a DAG file surfaces as
    # an import error of that file; captured_warnings holds any the DagBag kept aside.
    return _load_example_dags()


def test_every_example_dag_imports_without_errors_or_warnings(dag_bag: Any) -> None:
    assert dag_bag.import_errors == {}
    assert dag_bag.captured_warnings == {}
    assert set(dag_bag.dag_ids) == set(EXPECTED_TASKS)


@pytest.mark.parametrize("dag_id", sorted(EXPECTED_TASKS))
def test_each_example_dag_has_its_tasks_and_tags(dag_bag: Any, dag_id: str) -> None:
    dag = dag_bag.dags[dag_id]

    assert {task.task_id for task in dag.tasks} == EXPECTED_TASKS[dag_id]
    assert {"centralmon", "example"} <= set(dag.tags)
    assert all(
        getattr(task, "centralmon_conn_id", "centralmon_default") == "centralmon_default"
        for task in dag.tasks
    )


@pytest.mark.parametrize(
    "dag_id",
    ["centralmon_hourly_export", "centralmon_daily_batch_export", "centralmon_error_watch"],
)
def test_window_dags_use_a_timetable_with_real_data_intervals(dag_bag: Any, dag_id: str) -> None:
    # A cron string would be a CronTriggerTimetable on Airflow 3: zero-length intervals.
    assert type(dag_bag.dags[dag_id].timetable).__name__ == "CronDataIntervalTimetable"


def test_export_paths_are_templated_from_the_variable(dag_bag: Any) -> None:
    for dag_id, task_id in [
        ("centralmon_hourly_export", "export_atr_logs"),
        ("centralmon_daily_batch_export", "export_klewer_day"),
    ]:
        output_path = dag_bag.dags[dag_id].get_task(task_id).output_path

        assert "var.value.get('centralmon_export_path'" in output_path
        assert "centralmon-exports" in output_path
