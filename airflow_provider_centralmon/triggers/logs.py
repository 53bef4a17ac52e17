"""Trigger that waits, in the triggerer, until enough logs of a query exist in a window."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from datetime import datetime, timedelta
from typing import Any

from airflow_provider_centralmon import _log_search
from airflow_provider_centralmon import _trigger_events as events
from airflow_provider_centralmon._compat import BaseTrigger, TriggerEvent
from airflow_provider_centralmon._records import unwrap_record
from airflow_provider_centralmon._trigger_args import (
    query_from_json,
    query_to_json,
    window_from_json,
    window_to_json,
)
from airflow_provider_centralmon._waiting import (
    DEFAULT_MAX_CONSECUTIVE_FAILURES,
    FailedPolls,
    as_deadline,
    as_positive_count,
    as_seconds,
    next_interval,
)
from airflow_provider_centralmon._window import (
    LowerBoundStyle,
    SendTimeRange,
    UntimedPolicy,
    WindowFilter,
    checked_clock_skew_margin,
    parse_choice,
)
from airflow_provider_centralmon.exceptions import (
    CentralMonitoringError,
    QuotaFloorError,
    ServiceError,
)
from airflow_provider_centralmon.hooks._replies import next_reset
from airflow_provider_centralmon.hooks.centralmon_async import CentralMonitoringAsyncHook


class CentralMonitoringLogsTrigger(BaseTrigger):
    """Scroll a window now and then until at least ``min_records`` matching logs exist.

    Every poll is a new scroll and costs quota, so the trigger sleeps between polls (first,
    since the task has just looked), stops scrolling as soon as ``min_records`` are seen,
    refuses to poll once the quota the service reported falls below ``min_daily_remaining``,
    and gives up after ``max_consecutive_failures`` polls in a row failed on network or
    server errors.

    Events (``status``): ``success`` with ``records_seen``, ``polls`` and
    ``daily_remaining``; ``timeout`` after ``deadline``; ``error`` for a provider error,
    quota exhaustion included.

    :param centralmon_conn_id: id of the ``centralmon`` connection
    :param query: the search fields of :class:`~airflow_provider_centralmon._query.LogQuery`
    :param window: ``{"start": ISO, "end": ISO}`` or ``{"time_range": "now-15m"}``
    :param min_records: records of the window to wait for
    :param deadline: when to give up, in seconds since the epoch (UTC)
    :param poll_interval: seconds between polls (the first wait). Default 300.
    :param exponential_backoff: double the wait after every poll. Default False.
    :param max_wait: longest wait between polls, seconds; default none
    :param polls_done: polls the task already made, so backoff continues where it was
    :param timestamp_field: the record's time field. Default ``@timestamp``.
    :param untimed_records: ``keep`` (default), ``drop`` or ``fail`` records without a time
    :param lower_bound_style: ``relative`` (default) or ``anchored``
    :param clock_skew_margin: seconds the request reaches before the window. Default 300.
    :param min_daily_remaining: stop when the reported quota falls below this; default none
    :param daily_remaining: the quota the task saw last, if any
    :param max_consecutive_failures: failed polls in a row before giving up. Default 3.
    """

    def __init__(
        self,
        *,
        centralmon_conn_id: str,
        query: Mapping[str, Any],
        window: Mapping[str, Any],
        min_records: int,
        deadline: float,
        poll_interval: float = 300.0,
        exponential_backoff: bool = False,
        max_wait: float | None = None,
        polls_done: int = 0,
        timestamp_field: str = "@timestamp",
        untimed_records: str = UntimedPolicy.KEEP.value,
        lower_bound_style: str = LowerBoundStyle.RELATIVE.value,
        clock_skew_margin: float = 300.0,
        min_daily_remaining: int | None = None,
        daily_remaining: int | None = None,
        max_consecutive_failures: int = DEFAULT_MAX_CONSECUTIVE_FAILURES,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # unannotated in Airflow
        self.log_query = query_from_json(query)
        self.window = window_from_json(window)
        self.centralmon_conn_id = centralmon_conn_id
        self.min_records = as_positive_count(min_records, "min_records")
        self.deadline = as_deadline(deadline)
        self.poll_interval = as_seconds(poll_interval, "poll_interval")
        self.exponential_backoff = bool(exponential_backoff)
        self.max_wait = None if max_wait is None else as_seconds(max_wait, "max_wait")
        self.polls_done = int(polls_done)
        self.timestamp_field = timestamp_field
        self.untimed_records = parse_choice(UntimedPolicy, untimed_records, "untimed_records")
        self.lower_bound_style = parse_choice(
            LowerBoundStyle, lower_bound_style, "lower_bound_style"
        )
        self.clock_skew_margin = checked_clock_skew_margin(clock_skew_margin).total_seconds()
        self.min_daily_remaining = min_daily_remaining
        self.daily_remaining = daily_remaining
        self.max_consecutive_failures = as_positive_count(
            max_consecutive_failures, "max_consecutive_failures"
        )

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the class path and the JSON-ready arguments that rebuild this trigger."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "centralmon_conn_id": self.centralmon_conn_id,
                "query": query_to_json(self.log_query),
                "window": window_to_json(self.window),
                "min_records": self.min_records,
                "deadline": self.deadline,
                "poll_interval": self.poll_interval,
                "exponential_backoff": self.exponential_backoff,
                "max_wait": self.max_wait,
                "polls_done": self.polls_done,
                "timestamp_field": self.timestamp_field,
                "untimed_records": self.untimed_records.value,
                "lower_bound_style": self.lower_bound_style.value,
                "clock_skew_margin": self.clock_skew_margin,
                "min_daily_remaining": self.min_daily_remaining,
                "daily_remaining": self.daily_remaining,
                "max_consecutive_failures": self.max_consecutive_failures,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Sleep, look, and repeat until enough records exist, time is up, or polling fails."""
        hook = self._new_hook()
        polls, remaining = self.polls_done, self.daily_remaining
        failed_polls = FailedPolls(self.max_consecutive_failures, self.log)
        while True:
            left_s = self.deadline - time.time()
            if left_s <= 0:
                yield events.trigger_event(self._timeout_event(polls))
                return
            wait_s = next_interval(
                self.poll_interval,
                polls,
                exponential_backoff=self.exponential_backoff,
                max_wait_s=self.max_wait,
            )
            await self._pause(min(wait_s, left_s))

            floor = self.min_daily_remaining
            if floor is not None and remaining is not None and remaining < floor:
                yield events.trigger_event(events.error_event(_floor_error(remaining, floor)))
                return

            polls += 1
            try:
                seen, remaining = await self._probe(hook, remaining)
            except ServiceError as error:
                if failed_polls.give_up(error, polls):
                    yield events.trigger_event(events.error_event(error))
                    return
                continue
            except CentralMonitoringError as error:
                yield events.trigger_event(events.error_event(error))
                return

            failed_polls.reset()
            self.log.info(
                "Poll %d: %d of %d records seen; scroll calls left today: %s",
                polls,
                seen,
                self.min_records,
                "?" if remaining is None else remaining,
            )
            if seen >= self.min_records:
                yield events.trigger_event(
                    {
                        "status": events.SUCCESS,
                        "records_seen": seen,
                        "polls": polls,
                        "daily_remaining": remaining,
                    }
                )
                return

    async def _probe(
        self, hook: CentralMonitoringAsyncHook, remaining: int | None
    ) -> tuple[int, int | None]:
        """Scroll the window until ``min_records`` are seen; return them and the quota left."""
        window_filter = WindowFilter(
            window=self.window,
            timestamp_field=self.timestamp_field,
            untimed_policy=self.untimed_records,
        )
        time_range = SendTimeRange(
            self.window,
            # Looked up on each call, so that tests can move the clock.
            now=lambda: _log_search.utc_now(),
            style=self.lower_bound_style,
            clock_skew_margin=timedelta(seconds=self.clock_skew_margin),
        )
        seen = 0
        pages = hook.scroll(lambda: self.log_query.search_body(time_range()))
        try:
            async for page in pages:
                if page.number == 1:
                    time_range.check_answered()
                if page.meta.daily_remaining is not None:
                    remaining = page.meta.daily_remaining
                seen += _count_admitted(page.records, window_filter, self.min_records - seen)
                if seen >= self.min_records:
                    break
        finally:
            # Stops the scroll: no further page is requested once enough records were seen.
            if isinstance(pages, AsyncGenerator):
                await pages.aclose()
        return seen, remaining

    def _timeout_event(self, polls: int) -> dict[str, Any]:
        return {
            "status": events.TIMEOUT,
            "message": f"fewer than {self.min_records} matching records after {polls} polls",
            "polls": polls,
        }

    def _new_hook(self) -> CentralMonitoringAsyncHook:
        """Return the hook of one run; tests replace it to skip the hook's retry delays."""
        return CentralMonitoringAsyncHook(self.centralmon_conn_id)

    async def _pause(self, seconds: float) -> None:
        """Wait between two polls; tests replace it to step through the polls."""
        await asyncio.sleep(seconds)


def _count_admitted(items: list[dict[str, Any]], window_filter: WindowFilter, needed: int) -> int:
    """Count the items the window admits, stopping once ``needed`` were counted."""
    count = 0
    for item in items:
        unwrapped = unwrap_record(item)
        time_us = window_filter.record_time(unwrapped.source)
        if window_filter.admit(time_us, record_id=unwrapped.record_id):
            count += 1
            if count >= needed:
                break
    return count


def _floor_error(remaining: int, floor: int) -> QuotaFloorError:
    resets_at = next_reset(time.time())
    return QuotaFloorError(
        f"the scroll route had {remaining} calls left today when last seen, below "
        f"min_daily_remaining={floor}; the quota resets at {_iso(resets_at)}. Lower "
        "min_daily_remaining or run later",
        remaining=remaining,
        resets_at=resets_at,
        http_status=None,
    )


def _iso(instant: datetime) -> str:
    return instant.isoformat(timespec="seconds").replace("+00:00", "Z")
