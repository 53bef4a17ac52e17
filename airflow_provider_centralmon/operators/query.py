"""Operator that calls the query route: ATR billing data (ticket count) of a domain.

Limitation: the service documents only the purpose of this route, not its body or reply.
The body sent is ``{"domain_name": ..., "time_range": ...}`` plus ``extra_body``, and the
reply's payload is returned as it comes (unwrapped from the V2 envelope), whatever its shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_centralmon import _log_search
from airflow_provider_centralmon._compat import BaseOperator
from airflow_provider_centralmon._log_search import (
    DEFAULT_CONN_ID,
    checked_conn_id,
    checked_floor,
)
from airflow_provider_centralmon._query import is_templated, resolved_at_run_time
from airflow_provider_centralmon._quota_memory import check_quota_floor, remember_quota
from airflow_provider_centralmon.exceptions import InvalidParameterError
from airflow_provider_centralmon.hooks.centralmon import CentralMonitoringHook

if TYPE_CHECKING:
    from airflow_provider_centralmon._compat import Context

_BODY_FIELDS = ("domain_name", "time_range")


class CentralMonitoringQueryOperator(BaseOperator):
    """Call the query route (ATR billing data) and return the reply's payload as XCom.

    :param domain_name: the domain whose tickets are counted (templated)
    :param time_range: OpenSearch date math sent as is, e.g. ``now-1d`` (templated). The
        service resolves ``now`` itself, so the result is not repeatable.
    :param extra_body: further request fields, e.g. ``{"application": "atr"}``; it cannot
        replace ``domain_name`` or ``time_range``. Default none (templated).
    :param centralmon_conn_id: id of the ``centralmon`` connection. Default
        ``centralmon_default``.
    :param min_daily_remaining: refuse to call when the last remaining daily quota of the
        query route this process saw is below this number of calls; default None, no floor
    """

    template_fields = ("domain_name", "time_range", "extra_body")
    template_fields_renderers: ClassVar[dict[str, str]] = {"extra_body": "json"}
    ui_color = "#e8f4fa"

    def __init__(
        self,
        *,
        domain_name: str,
        time_range: str,
        extra_body: Mapping[str, Any] | None = None,
        centralmon_conn_id: str = DEFAULT_CONN_ID,
        min_daily_remaining: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.domain_name = domain_name
        self.time_range = time_range
        self.extra_body = {} if extra_body is None else extra_body
        self.centralmon_conn_id = checked_conn_id(centralmon_conn_id)
        self.min_daily_remaining = checked_floor(min_daily_remaining)
        self.request_body(rendered=False)

    def request_body(self, *, rendered: bool = True) -> dict[str, Any]:
        """Return the body to send, or raise :class:`InvalidParameterError` for a bad field.

        :param rendered: whether Jinja has rendered the templated fields; before, fields
            still holding a template (or a value resolved at run time) are skipped
        """
        body: dict[str, Any] = {}
        for name in _BODY_FIELDS:
            value = getattr(self, name)
            if not rendered and (is_templated(value) or resolved_at_run_time(value)):
                continue
            if not isinstance(value, str) or not value.strip():
                raise InvalidParameterError(f"{name} must be a non-empty string, got {value!r}")
            if rendered and is_templated(value):
                raise InvalidParameterError(f"{name} still holds a template: {value!r}")
            body[name] = value

        extra: object = self.extra_body
        if not rendered and resolved_at_run_time(extra):
            return body
        if not isinstance(extra, Mapping):
            raise InvalidParameterError("extra_body must be a mapping of request fields")
        # Whatever the case of its letters: the service may not tell the names apart.
        clashes = sorted(str(name) for name in extra if str(name).lower() in _BODY_FIELDS)
        if clashes:
            raise InvalidParameterError(
                f"extra_body may not set {', '.join(clashes)}: use the parameters of the same names"
            )
        return {**body, **extra}

    def now(self) -> datetime:
        """Return the current instant (UTC); read from the same clock as the log operators."""
        return _log_search.utc_now()

    def execute(self, context: Context) -> Any:
        """Call the query route and return its payload."""
        body = self.request_body(rendered=True)
        with CentralMonitoringHook(
            centralmon_conn_id=self.centralmon_conn_id,
            clock=lambda: self.now().timestamp(),
        ) as hook:
            check_quota_floor(hook, "query", self.min_daily_remaining, self.now())
            try:
                reply = hook.query(body)
            finally:
                remember_quota(hook)

        meta = reply.meta
        self.log.info(
            "Query of %s over %s answered by %s (request id %s, calls left today: %s)",
            self.domain_name,
            self.time_range,
            meta.route,
            meta.request_id or "-",
            "?" if meta.daily_remaining is None else meta.daily_remaining,
        )
        return reply.payload
