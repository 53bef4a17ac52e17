"""Sensor that waits until logs matching a query exist in a window."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_centralmon import _trigger_events as events
from airflow_provider_centralmon._compat import (
    AirflowSensorTimeout,
    BaseSensorOperator,
    PokeReturnValue,
    conf,
)
from airflow_provider_centralmon._log_search import (
    SEARCH_TEMPLATE_FIELDS,
    LogSearchMixin,
    SearchPlan,
    SearchStats,
)
from airflow_provider_centralmon._trigger_args import query_to_json, window_to_json
from airflow_provider_centralmon._waiting import (
    DEFAULT_MAX_CONSECUTIVE_FAILURES,
    as_positive_count,
    check_poke_timing,
)
from airflow_provider_centralmon.exceptions import InvalidParameterError

if TYPE_CHECKING:
    from airflow_provider_centralmon._compat import Context

#: Every poke is a scroll and spends quota: minutes, not Airflow's 60 seconds, by default.
DEFAULT_POKE_INTERVAL = timedelta(minutes=5)
# The deferral's own timeout only backs up the trigger's deadline, which reports first.
_DEFERRAL_GRACE_S = 300.0


class CentralMonitoringLogsSensor(LogSearchMixin, BaseSensorOperator):
    """Wait until at least ``min_records`` logs matching a query exist in a window.

    For example error logs (``filters={"level": "ERROR"}``), or the first logs of a window
    having landed. Each poke is a scroll that stops as soon as ``min_records`` records of the
    window are seen, and logs the quota the service says is left. Since every poke spends
    quota, the default poke interval is 5 minutes; ``exponential_backoff`` (with
    ``max_wait``) spaces pokes out further, and ``min_daily_remaining`` stops the sensor
    before it spends the quota below a floor. The sensor returns (XCom) the records seen (at
    most ``min_records``), the window, the pages read and the quota left.

    Takes every search parameter of ``LogSearchMixin`` (``application``, ``domain``,
    ``filters``, ``start``/``end`` or ``time_range``, ``timestamp_field``, ...,
    ``centralmon_conn_id``, ``min_daily_remaining``), Airflow's sensor arguments
    (``timeout``, ``mode``, ``soft_fail``, ``exponential_backoff``, ``max_wait``, ...), and:

    :param min_records: records of the window to wait for. Default 1.
    :param poke_interval: time between pokes, a timedelta or seconds. Default 5 minutes.
    :param deferrable: wait in the triggerer, freeing the worker. Default: Airflow's
        ``[operators] default_deferrable``.
    :param max_consecutive_failures: pokes that may fail in a row (after the hook's own
        retries) in the triggerer before the task fails. Default 3.
    """

    template_fields: Sequence[str] = SEARCH_TEMPLATE_FIELDS
    ui_color = "#dbe9f6"

    def __init__(
        self,
        *,
        min_records: int = 1,
        poke_interval: timedelta | float = DEFAULT_POKE_INTERVAL,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        max_consecutive_failures: int = DEFAULT_MAX_CONSECUTIVE_FAILURES,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, **kwargs)
        check_poke_timing(self.poke_interval, self.max_wait)
        if not isinstance(deferrable, bool):
            raise InvalidParameterError(f"deferrable must be True or False, not {deferrable!r}")
        self.min_records = as_positive_count(min_records, "min_records")
        self.deferrable = deferrable
        self.max_consecutive_failures = as_positive_count(
            max_consecutive_failures, "max_consecutive_failures"
        )
        self._pokes = 0
        self._last_stats: SearchStats | None = None

    def execute(self, context: Context) -> Any:
        """Poke once in the worker; then keep poking, or defer the waiting to the triggerer."""
        if not self.deferrable:
            return super().execute(context)
        first = self.poke(context)
        if first.is_done:
            return first.xcom_value
        # Imported here: DAG files that only declare the sensor need not load Airflow's triggers.
        from airflow_provider_centralmon.triggers.logs import CentralMonitoringLogsTrigger

        plan = self.plan_search(context)
        stats = self._last_stats
        self.defer(
            trigger=CentralMonitoringLogsTrigger(
                centralmon_conn_id=self.centralmon_conn_id,
                query=query_to_json(plan.query),
                window=window_to_json(plan.window),
                min_records=self.min_records,
                deadline=time.time() + self.timeout,
                poll_interval=self.poke_interval,
                exponential_backoff=self.exponential_backoff,
                max_wait=None if self.max_wait is None else self.max_wait.total_seconds(),
                polls_done=self._pokes,
                timestamp_field=self.timestamp_field,
                untimed_records=self.untimed_records.value,
                lower_bound_style=self.lower_bound_style.value,
                clock_skew_margin=self.clock_skew_margin.total_seconds(),
                min_daily_remaining=self.min_daily_remaining,
                daily_remaining=None if stats is None else stats.daily_remaining,
                max_consecutive_failures=self.max_consecutive_failures,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout + self.poke_interval + _DEFERRAL_GRACE_S),
        )

    def poke(self, context: Context) -> PokeReturnValue:
        """Scroll the window until ``min_records`` records are seen or it has no more."""
        plan = self.plan_search(context)
        stats = SearchStats()
        with self.get_hook() as hook:
            seen = sum(
                1 for _ in self.iter_window_records(hook, plan, limit=self.min_records, stats=stats)
            )
        self._pokes += 1
        self._last_stats = stats
        self.log.info(
            "Poke %d: %d of %d records seen in %s (%d pages); calls left today on %s: %s",
            self._pokes,
            seen,
            self.min_records,
            _describe(plan),
            stats.pages,
            stats.route or "the scroll route",
            "?" if stats.daily_remaining is None else stats.daily_remaining,
        )
        if seen < self.min_records:
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(is_done=True, xcom_value=self._result(plan, seen, stats.as_dict()))

    def execute_complete(self, context: Context, event: Mapping[str, Any] | None = None) -> Any:
        """Finish after the trigger: return what was seen, or raise what it reported."""
        status = events.event_status(
            event, {events.SUCCESS, events.TIMEOUT, events.ERROR}, where=f"Sensor {self.task_id}"
        )
        assert event is not None  # checked by event_status
        if status == events.ERROR:
            events.raise_error_event(event)
        if status == events.TIMEOUT:
            raise AirflowSensorTimeout(
                f"Sensor has timed out after {self.timeout:g} s: {event.get('message')}"
            )
        plan = self.plan_search(context)
        search = {"polls": event.get("polls"), "daily_remaining": event.get("daily_remaining")}
        return self._result(plan, int(event.get("records_seen") or 0), search)

    def _result(self, plan: SearchPlan, seen: int, search: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "records_seen": seen,
            "min_records": self.min_records,
            "window": plan.window.describe(),
            "search": dict(search),
        }


def _describe(plan: SearchPlan) -> str:
    described = plan.window.describe()
    if "time_range" in described:
        return f"time_range {described['time_range']!r}"
    return f"[{described['start']}, {described['end']})"
