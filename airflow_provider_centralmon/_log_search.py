"""The search parameters and the scroll loop shared by every log operator and sensor.

:class:`LogSearchMixin` goes before ``BaseOperator`` or ``BaseSensorOperator`` in the bases
of a task class. It takes the search parameters as keyword-only arguments, checks the literal
ones when the DAG is parsed, checks them again once Jinja has rendered them, and offers the
steps every task repeats: resolving the window from the run, the quota floor, and a scroll
that yields only the records of the window.

"Now" comes from :func:`utc_now`, looked up on every call, so a test can replace it (for
example with a simulator's manual clock) by monkeypatching this module's attribute.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_centralmon._query import LogQuery, is_templated, resolved_at_run_time
from airflow_provider_centralmon._quota_memory import check_quota_floor, remember_quota
from airflow_provider_centralmon._records import DEFAULT_TIMESTAMP_FIELD, unwrap_record
from airflow_provider_centralmon._window import (
    DEFAULT_CLOCK_SKEW_MARGIN,
    ExportWindow,
    LowerBoundStyle,
    SendTimeRange,
    UntimedPolicy,
    WindowFilter,
    check_window_arguments,
    checked_clock_skew_margin,
    parse_choice,
    resolve_window,
)
from airflow_provider_centralmon.exceptions import InvalidParameterError, InvalidWindowError
from airflow_provider_centralmon.hooks.centralmon import (
    CentralMonitoringHook,
    ScrollPage,
)

if TYPE_CHECKING:
    from airflow_provider_centralmon._compat import Context

DEFAULT_CONN_ID = "centralmon_default"

#: Parameters of the mixin that Jinja renders; a task class adds its own after them.
SEARCH_TEMPLATE_FIELDS: tuple[str, ...] = (
    "start",
    "end",
    "time_range",
    "application",
    "domain",
    "app_type",
    "filters",
    "log_group",
    "tenant",
    "stage",
    "extra_body",
)

# Stands in for a value resolved at run time (an XComArg, say) during the parse-time check,
# which skips Jinja strings and so skips this one too.
_DEFERRED = "{{ resolved at run time }}"


def utc_now() -> datetime:
    """Return the current instant (UTC); tests replace this module attribute to move time."""
    return datetime.now(UTC)


# -- what a search yields --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WindowRecord:
    """One record of the window.

    :param record: what to return or write: the hit's ``_source``, or the whole hit with
        ``keep_hit_metadata``, or the bare record
    :param time_us: its time in microseconds since the epoch; None when it has none
    :param record_id: the hit's ``_id``, or ``""``
    """

    record: Mapping[str, Any]
    time_us: int | None
    record_id: str


@dataclass
class SearchStats:
    """What a search did, filled in while it runs; nothing in it is secret.

    :param route: the scroll route called
    :param time_range: the ``time_range`` sent
    :param pages: pages received
    :param records_received: records the service sent, before the window filter
    :param records_yielded: records passed on
    :param first_request_id: the service's request id of the first page
    :param last_request_id: the service's request id of the latest page
    :param daily_remaining: calls left today on the route, as the latest reply said
    :param stopped_at_limit: whether the search stopped at the caller's limit
    """

    route: str | None = None
    time_range: str | None = None
    pages: int = 0
    records_received: int = 0
    records_yielded: int = 0
    first_request_id: str | None = None
    last_request_id: str | None = None
    daily_remaining: int | None = None
    stopped_at_limit: bool = False

    def as_dict(self) -> dict[str, Any]:
        """Return the stats as JSON-ready data, for XCom and ``_run.json``."""
        return {
            "route": self.route,
            "time_range": self.time_range,
            "pages": self.pages,
            "records_received": self.records_received,
            "records_yielded": self.records_yielded,
            "request_ids": {"first": self.first_request_id, "last": self.last_request_id},
            "daily_remaining": self.daily_remaining,
            "stopped_at_limit": self.stopped_at_limit,
        }

    def count_page(self, page: ScrollPage) -> None:
        """Add one page to the stats."""
        self.route = page.meta.route
        self.pages += 1
        self.records_received += len(page.records)
        self.first_request_id = self.first_request_id or page.meta.request_id
        self.last_request_id = page.meta.request_id or self.last_request_id
        if page.meta.daily_remaining is not None:
            self.daily_remaining = page.meta.daily_remaining


@dataclass(frozen=True)
class SearchPlan:
    """Everything a run needs to search: the rendered query, its window and their filter.

    :param query: the validated query
    :param window: the window of the run
    :param window_filter: the filter the records go through (fresh counts)
    :param keep_hit_metadata: whether records keep their OpenSearch hit metadata
    """

    query: LogQuery
    window: ExportWindow
    window_filter: WindowFilter
    keep_hit_metadata: bool = False

    def export_fields(self) -> dict[str, Any]:
        """Return every field that changes what is exported, for manifests and query hashes."""
        return {
            **self.query.identity(),
            "timestamp_field": self.window_filter.timestamp_field,
            "untimed_records": self.window_filter.untimed_policy.value,
            "keep_hit_metadata": self.keep_hit_metadata,
        }


# -- the mixin -------------------------------------------------------------------------------


class LogSearchMixin:
    """Search parameters and steps shared by the log operators and sensors.

    Put it before ``BaseOperator`` or ``BaseSensorOperator`` in the bases; every argument it
    does not know is passed on. Literal values are checked when the DAG is parsed; templated
    ones when the task runs, after rendering. Either way a bad value raises
    :class:`~airflow_provider_centralmon.exceptions.InvalidParameterError`.

    :param application: application whose logs are searched: ``atr``, ``klewer``,
        ``eventops`` or ``quasar`` (templated)
    :param domain: domain of the monitored environment; all domains when None (default;
        templated)
    :param app_type: ``ec2`` or ``caas``; all when None (default; templated)
    :param filters: exact-match filters on record fields, e.g. ``{"level": "ERROR"}``;
        default none (templated)
    :param log_group: EventOps only; default None (templated)
    :param tenant: EventOps only; default None (templated)
    :param stage: EventOps only; default None (templated)
    :param page_size: records per request (the service's ``size``); default None, the
        service's own default
    :param extra_body: further request fields the service may add later; it cannot replace
        the fields above, in any letter case, and sets ``app_type`` only when that parameter
        is None. Default none (templated)
    :param allow_unknown_application: accept an application this provider does not know.
        Default False.
    :param start: first instant of the window (inclusive), a timezone-aware datetime or an
        ISO 8601 string; default None: the run's data interval start (templated)
    :param end: end of the window (exclusive); default None: the data interval end
        (templated)
    :param time_range: raw OpenSearch date math (e.g. ``now-15m``) sent as is instead of a
        window; the result is neither trimmed nor repeatable. Default None (templated)
    :param timestamp_field: name or dotted path of the record's time field. Default
        ``@timestamp``.
    :param untimed_records: what happens to records without a readable time: ``keep``
        (default), ``drop`` or ``fail``
    :param lower_bound_style: how the window's start is sent: ``relative`` (``now-<N>m``,
        default) or ``anchored`` (an absolute instant the service does not document)
    :param clock_skew_margin: how far before ``start`` the request reaches, to cover the
        difference between this machine's clock and the service's: a timedelta or seconds,
        at most 1 day. Default 5 minutes.
    :param keep_hit_metadata: keep each record's OpenSearch hit (``_index``, ``_id``,
        ``_source``) instead of only its ``_source``. Default False.
    :param centralmon_conn_id: id of the ``centralmon`` connection. Default
        ``centralmon_default``.
    :param min_daily_remaining: refuse to start when the last remaining daily quota this
        process saw for the route is below this number of calls; default None, no floor
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Airflow wraps a task class's __init__ (default_args, XComArg dependencies) only
        # when the class defines one; a task class that inherits the mixin's would lose that.
        if "__init__" not in cls.__dict__:

            def __init__(self: LogSearchMixin, **task_kwargs: Any) -> None:
                super(cls, self).__init__(**task_kwargs)

            cls.__init__ = __init__  # type: ignore[method-assign]

    def __init__(
        self,
        *,
        application: str,
        domain: str | None = None,
        app_type: str | None = None,
        filters: Mapping[str, Any] | None = None,
        log_group: str | None = None,
        tenant: str | None = None,
        stage: str | None = None,
        page_size: int | None = None,
        extra_body: Mapping[str, Any] | None = None,
        allow_unknown_application: bool = False,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        time_range: str | None = None,
        timestamp_field: str = DEFAULT_TIMESTAMP_FIELD,
        untimed_records: UntimedPolicy | str = UntimedPolicy.KEEP,
        lower_bound_style: LowerBoundStyle | str = LowerBoundStyle.RELATIVE,
        clock_skew_margin: timedelta | float = DEFAULT_CLOCK_SKEW_MARGIN,
        keep_hit_metadata: bool = False,
        centralmon_conn_id: str = DEFAULT_CONN_ID,
        min_daily_remaining: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.application = application
        self.domain = domain
        self.app_type = app_type
        self.filters = {} if filters is None else filters
        self.log_group = log_group
        self.tenant = tenant
        self.stage = stage
        self.page_size = page_size
        self.extra_body = {} if extra_body is None else extra_body
        self.allow_unknown_application = allow_unknown_application
        self.start = start
        self.end = end
        self.time_range = time_range
        self.timestamp_field = timestamp_field
        self.untimed_records = parse_choice(UntimedPolicy, untimed_records, "untimed_records")
        self.lower_bound_style = parse_choice(
            LowerBoundStyle, lower_bound_style, "lower_bound_style"
        )
        self.clock_skew_margin = checked_clock_skew_margin(clock_skew_margin)
        self.keep_hit_metadata = _as_flag("keep_hit_metadata", keep_hit_metadata)
        self.centralmon_conn_id = checked_conn_id(centralmon_conn_id)
        self.min_daily_remaining = checked_floor(min_daily_remaining)
        self._check_search_parameters(rendered=False)

    # -- checks ------------------------------------------------------------------------------

    def _check_search_parameters(self, *, rendered: bool) -> LogQuery:
        """Check the search parameters; before rendering, values known only later are skipped.

        :param rendered: whether Jinja has rendered the templated fields
        """
        if not isinstance(self.timestamp_field, str) or not self.timestamp_field.strip():
            raise InvalidParameterError("timestamp_field must be a non-empty field name")
        _as_flag("allow_unknown_application", self.allow_unknown_application)
        if is_templated(self.page_size) or resolved_at_run_time(self.page_size):
            # Not a template field: Jinja would leave it as text, and text is no page size.
            raise InvalidParameterError(
                f"page_size is not templated: pass a whole number, not {self.page_size!r}"
            )

        literal: Callable[[Any], Any] = (lambda value: value) if rendered else _literal_or_deferred
        query = LogQuery(
            application=literal(self.application),
            domain=literal(self.domain),
            app_type=literal(self.app_type),
            filters=literal(self.filters),
            log_group=literal(self.log_group),
            tenant=literal(self.tenant),
            stage=literal(self.stage),
            page_size=self.page_size,
            extra_body=literal(self.extra_body),
            allow_unknown_application=self.allow_unknown_application,
        )
        query.validate()
        if rendered:
            _reject_leftover_templates(query, self.start, self.end, self.time_range)
        _check_bound_types(start=self.start, end=self.end)
        check_window_arguments(start=self.start, end=self.end, time_range=self.time_range)
        return query

    # -- steps of a run ----------------------------------------------------------------------

    def now(self) -> datetime:
        """Return the current instant (UTC), from :func:`utc_now`."""
        return utc_now()

    def build_log_query(self) -> LogQuery:
        """Return the rendered query, checked again; call it in ``execute`` or ``poke``."""
        return self._check_search_parameters(rendered=True)

    def resolve_export_window(self, context: Context | Mapping[str, Any]) -> ExportWindow:
        """Return the window of this run: ``start``/``end``, ``time_range`` or the data interval.

        :param context: the task's context (Airflow 2.11 or 3)
        """
        interval_start, interval_end = data_interval_of(context)
        return resolve_window(
            start=self.start,
            end=self.end,
            time_range=self.time_range,
            data_interval_start=interval_start,
            data_interval_end=interval_end,
            now=self.now(),
        )

    def make_window_filter(self, window: ExportWindow) -> WindowFilter:
        """Return a fresh filter of ``window`` with this task's time field and untimed policy."""
        return WindowFilter(
            window=window,
            timestamp_field=self.timestamp_field,
            untimed_policy=self.untimed_records,
        )

    def plan_search(self, context: Context | Mapping[str, Any]) -> SearchPlan:
        """Check the rendered parameters and return the query, window and filter of this run.

        :param context: the task's context
        """
        query = self.build_log_query()
        window = self.resolve_export_window(context)
        return SearchPlan(
            query=query,
            window=window,
            window_filter=self.make_window_filter(window),
            keep_hit_metadata=self.keep_hit_metadata,
        )

    def get_hook(self) -> CentralMonitoringHook:
        """Return a new hook of ``centralmon_conn_id`` that reads the time from :meth:`now`."""
        return CentralMonitoringHook(
            centralmon_conn_id=self.centralmon_conn_id,
            clock=lambda: self.now().timestamp(),
        )

    def check_quota_floor(self, hook: CentralMonitoringHook, operation: str = "scroll") -> None:
        """Raise :class:`QuotaFloorError` if the route's last known quota is below the floor.

        Nothing is known before the first call of the process to the route: the check passes.

        :param hook: the hook about to be used
        :param operation: ``scroll``, ``batch``, ``batch_urls`` or ``query``
        """
        check_quota_floor(hook, operation, self.min_daily_remaining, self.now())

    def iter_window_records(
        self,
        hook: CentralMonitoringHook,
        plan: SearchPlan,
        *,
        limit: int | None = None,
        stats: SearchStats | None = None,
        on_page: Callable[[ScrollPage], None] | None = None,
    ) -> Generator[WindowRecord, None, None]:
        """Scroll the plan's window and yield the records the window filter admits.

        The quota floor is checked when the generator is first advanced, and the
        ``time_range`` computed each time the first request is sent, retries included; a
        first page that came too late for a relative bound raises
        :class:`~airflow_provider_centralmon.exceptions.StaleTimeRangeError`. With ``limit``,
        no page is requested after the ``limit``-th record was yielded.

        :param hook: the hook to call
        :param plan: what to search, from :meth:`plan_search`
        :param limit: stop after yielding this many records; default None, no limit
        :param stats: filled in while the search runs; default: not kept
        :param on_page: called with each page before its records are yielded
        """
        if limit is not None and limit < 1:
            raise InvalidParameterError(f"limit must be a positive number of records: {limit}")
        stats = stats if stats is not None else SearchStats()
        self.check_quota_floor(hook, "scroll")

        time_range = SendTimeRange(
            plan.window,
            now=self.now,
            style=self.lower_bound_style,
            clock_skew_margin=self.clock_skew_margin,
        )
        pages = hook.scroll(lambda: plan.query.search_body(time_range()))
        try:
            yield from self._admitted(pages, plan, limit, stats, on_page, time_range)
        finally:
            remember_quota(hook)
            if isinstance(pages, Generator):
                pages.close()

    def _admitted(
        self,
        pages: Iterator[ScrollPage],
        plan: SearchPlan,
        limit: int | None,
        stats: SearchStats,
        on_page: Callable[[ScrollPage], None] | None,
        time_range: SendTimeRange,
    ) -> Iterator[WindowRecord]:
        window_filter = plan.window_filter
        for page in pages:
            if page.number == 1:
                time_range.check_answered()
                stats.time_range = time_range.sent
            stats.count_page(page)
            if on_page is not None:
                on_page(page)
            for item in page.records:
                unwrapped = unwrap_record(item, keep_hit_metadata=plan.keep_hit_metadata)
                time_us = window_filter.record_time(unwrapped.source)
                if not window_filter.admit(time_us, record_id=unwrapped.record_id):
                    continue
                stats.records_yielded += 1
                yield WindowRecord(unwrapped.record, time_us, unwrapped.record_id)
                if limit is not None and stats.records_yielded >= limit:
                    stats.stopped_at_limit = True
                    return


# -- helpers ---------------------------------------------------------------------------------


def data_interval_of(
    context: Context | Mapping[str, Any],
) -> tuple[datetime | None, datetime | None]:
    """Return the run's data interval from a task context of Airflow 2.11 or 3.

    Runs without one (asset-triggered runs on Airflow 3, for example) give ``(None, None)``.
    """
    start: Any = context.get("data_interval_start")
    end: Any = context.get("data_interval_end")
    if start is None or end is None:
        dag_run = context.get("dag_run")
        start = getattr(dag_run, "data_interval_start", None)
        end = getattr(dag_run, "data_interval_end", None)
    return start, end


def _literal_or_deferred(value: Any) -> Any:
    return _DEFERRED if resolved_at_run_time(value) else value


def _check_bound_types(**bounds: object) -> None:
    for name, value in bounds.items():
        if value is None or isinstance(value, str | datetime) or resolved_at_run_time(value):
            continue
        raise InvalidWindowError(
            f"{name} must be a datetime or an ISO 8601 string, not {type(value).__name__}"
        )


def _reject_leftover_templates(query: LogQuery, *window_values: object) -> None:
    # A Jinja expression still present after rendering means the value was never rendered
    # (a typo in template_fields, or a literal "{{" the service would receive as is).
    searched = {
        "application": query.application,
        "domain": query.domain,
        "app_type": query.app_type,
        "log_group": query.log_group,
        "tenant": query.tenant,
        "stage": query.stage,
    }
    for name, value in searched.items():
        if is_templated(value):
            raise InvalidParameterError(f"{name} still holds a template after rendering: {value!r}")
    for bound in window_values:
        if is_templated(bound):
            raise InvalidParameterError(f"a window bound was not rendered: {bound!r}")


def _as_flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidParameterError(f"{name} must be True or False, not {value!r}")
    return value


def checked_conn_id(value: object) -> str:
    """Return ``value`` as a connection id, or raise :class:`InvalidParameterError`."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidParameterError("centralmon_conn_id must be a non-empty connection id")
    return value


def checked_floor(value: object) -> int | None:
    """Return ``value`` as a quota floor (None or 0 and more), or raise InvalidParameterError."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidParameterError(
            f"min_daily_remaining must be a whole number of calls, 0 or more, not {value!r}"
        )
    return value
