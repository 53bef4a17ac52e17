"""Operators that fetch the log records of a time window by scrolling the logs API.

- :class:`CentralMonitoringLogsOperator` returns the records as the task's XCom value, for
  small windows; past ``max_records`` it fails and points to the storage operator.
- :class:`CentralMonitoringLogsToStorageOperator` writes them to object storage as JSON
  Lines parts with a manifest, in memory that does not grow with the number of records.

Both take the search and window parameters of
:class:`~airflow_provider_centralmon._log_search.LogSearchMixin`.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import closing
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_centralmon._compat import BaseOperator
from airflow_provider_centralmon._log_search import (
    SEARCH_TEMPLATE_FIELDS,
    LogSearchMixin,
    SearchPlan,
    SearchStats,
)
from airflow_provider_centralmon._records import SortKey, encode_line, sort_key
from airflow_provider_centralmon._storage_export import (
    STORAGE_TEMPLATE_FIELDS,
    StorageExportMixin,
)
from airflow_provider_centralmon.exceptions import InvalidParameterError

if TYPE_CHECKING:
    from airflow_provider_centralmon._compat import Context

DEFAULT_MAX_RECORDS = 10_000


class CentralMonitoringLogsOperator(LogSearchMixin, BaseOperator):
    """Return the log records of a time window as the task's XCom value.

    Records come unwrapped from their OpenSearch hit (only ``_source``, unless
    ``keep_hit_metadata``), sorted by record time, then ``_id``; records without a readable
    time come last. Exact duplicates (same time, ``_id`` and content, as a hit sent on two
    pages would be) are returned once, as :class:`CentralMonitoringLogsToStorageOperator`
    writes them once. XCom lives in Airflow's database, so the number of records is capped:
    past ``max_records`` distinct records the task fails, without fetching further pages, and
    the message points to :class:`CentralMonitoringLogsToStorageOperator`.

    Every parameter of the search and the window is documented on
    :class:`~airflow_provider_centralmon._log_search.LogSearchMixin`: ``application``,
    ``domain``, ``app_type``, ``filters``, ``log_group``, ``tenant``, ``stage``,
    ``page_size``, ``extra_body``, ``allow_unknown_application``, ``start``, ``end``,
    ``time_range``, ``timestamp_field``, ``untimed_records``, ``lower_bound_style``,
    ``clock_skew_margin``, ``keep_hit_metadata``, ``centralmon_conn_id`` and
    ``min_daily_remaining``.

    :param max_records: most records the task may return. Default 10,000.
    """

    template_fields = SEARCH_TEMPLATE_FIELDS
    template_fields_renderers: ClassVar[dict[str, str]] = {"filters": "json", "extra_body": "json"}
    ui_color = "#e8f4fa"

    def __init__(self, *, max_records: int = DEFAULT_MAX_RECORDS, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(max_records, bool) or not isinstance(max_records, int) or max_records < 1:
            raise InvalidParameterError(
                f"max_records must be a positive whole number of records, not {max_records!r}"
            )
        self.max_records = max_records

    def execute(self, context: Context) -> list[Mapping[str, Any]]:
        """Fetch the window's records and return them."""
        plan = self.plan_search(context)
        stats = SearchStats()
        # Keyed like the storage export's sort, whose equal keys are its exact duplicates.
        records: dict[SortKey, Mapping[str, Any]] = {}
        duplicates = 0
        with self.get_hook() as hook:
            found = self.iter_window_records(hook, plan, stats=stats)
            # Failing inside the loop closes the scroll: no page after the one holding the
            # first record past the limit is fetched.
            with closing(found):
                for record in found:
                    key = sort_key(record.time_us, record.record_id, encode_line(record.record))
                    if key in records:
                        duplicates += 1
                        continue
                    if len(records) == self.max_records:
                        raise self._too_many_records(plan, stats)
                    records[key] = record.record

        log_search_summary(self, plan, stats)
        self.log.info("Returning %s records, %s duplicates dropped", len(records), duplicates)
        return [records[key] for key in sorted(records)]

    def _too_many_records(self, plan: SearchPlan, stats: SearchStats) -> InvalidParameterError:
        return InvalidParameterError(
            f"the window {_window_text(plan)} holds more than max_records={self.max_records} "
            f"records (stopped after {stats.pages} pages); returning them as XCom would "
            "overload Airflow's database. Use CentralMonitoringLogsToStorageOperator to "
            "export them to object storage, or narrow the window or the filters, or raise "
            "max_records"
        )


class CentralMonitoringLogsToStorageOperator(LogSearchMixin, StorageExportMixin, BaseOperator):
    """Export the log records of a time window to object storage as JSON Lines.

    The records are fetched with one scroll, trimmed to ``[start, end)``, sorted by time and
    ``_id``, cleared of exact duplicates and written as gzipped JSON Lines parts of bounded
    size, streaming through local sorted runs so that memory does not grow with the number
    of records. Nothing is visible at the target until the scroll has finished: parts are
    written to a staging directory, then moved in place; ``_run.json`` and, last,
    ``_manifest.json`` complete the export. An export without ``_manifest.json`` is
    unfinished. Running the same window again replaces the export, and gives byte-identical
    parts and manifest when the service returns the same records in the window; facts that
    depend on when the run happened (records returned outside the window, duplicates, pages,
    request ids, remaining quota, run id, export time) go to ``_run.json`` for that reason.

    The task's XCom value is the manifest plus ``path`` (the export directory) and ``run``
    (the content of ``_run.json``, with the window filter's counts under
    ``run["export"]["window_filter"]``); records are never part of it.

    Every parameter of the search and the window is documented on
    :class:`~airflow_provider_centralmon._log_search.LogSearchMixin`; the storage parameters
    (``output_path``, ``layout``, ``compression``, ``max_part_bytes``, ``max_part_records``,
    ``spill_dir``, ``progress_interval``) on
    :class:`~airflow_provider_centralmon._storage_export.StorageExportMixin`. A literal
    ``output_path`` is declared as the task's Asset outlet.
    """

    template_fields = (*SEARCH_TEMPLATE_FIELDS, *STORAGE_TEMPLATE_FIELDS)
    template_fields_renderers: ClassVar[dict[str, str]] = {"filters": "json", "extra_body": "json"}
    ui_color = "#e8f4fa"

    def execute(self, context: Context) -> dict[str, Any]:
        """Fetch the window's records, write them, publish the export; return its manifest."""
        plan = self.plan_search(context)
        self.check_export_target(plan)
        stats = SearchStats()
        writer = self.open_export_writer(plan, requested_at=self.now())
        with self.get_hook() as hook, writer:
            pages = self.iter_window_records(
                hook, plan, stats=stats, on_page=lambda _page: writer.add_page()
            )
            for record in pages:
                writer.add(record.record, time_us=record.time_us, record_id=record.record_id)

            log_search_summary(self, plan, stats)
            run_info = {"search": stats.as_dict(), **run_identity(context, self.now())}
            return self.publish_export(writer, plan, run_info, context=context)


# -- helpers shared with other log operators -------------------------------------------------


def run_identity(context: Context | Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """Return which run did an export, for ``_run.json``: dag, task, run, try and time.

    :param context: the task's context
    :param now: the current instant
    """
    task_instance = context.get("ti") or context.get("task_instance")
    return {
        "dag_id": getattr(task_instance, "dag_id", None),
        "task_id": getattr(task_instance, "task_id", None),
        "run_id": context.get("run_id") or getattr(task_instance, "run_id", None),
        "try_number": getattr(task_instance, "try_number", None),
        "exported_at": now.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }


def log_search_summary(task: Any, plan: SearchPlan, stats: SearchStats) -> None:
    """Log what a search fetched and how the window filter sorted it; nothing secret.

    :param task: the operator, whose ``log`` is written to
    :param plan: the search plan
    :param stats: the search's statistics
    """
    counts = plan.window_filter.counts
    task.log.info(
        "Fetched %s records in %s pages from %s (time_range %s) for %s: %s in the window, "
        "%s before, %s after, %s untimed kept, %s untimed dropped; request ids %s..%s, "
        "calls left today: %s",
        stats.records_received,
        stats.pages,
        stats.route,
        stats.time_range,
        _window_text(plan),
        counts.in_window,
        counts.before_window,
        counts.after_window,
        counts.untimed_kept,
        counts.untimed_dropped,
        stats.first_request_id or "-",
        stats.last_request_id or "-",
        "?" if stats.daily_remaining is None else stats.daily_remaining,
    )


def _window_text(plan: SearchPlan) -> str:
    described = plan.window.describe()
    if "time_range" in described:
        return f"time_range {described['time_range']!r}"
    return f"[{described['start']}, {described['end']})"
