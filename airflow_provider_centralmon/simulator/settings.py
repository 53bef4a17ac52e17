"""Every knob of the simulator, in one frozen dataclass.

The real service documents little beyond its request and reply fields; each setting whose
default is a guess says so, so that a test can switch to the other plausible behaviour.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from airflow_provider_centralmon.simulator.faults import FaultRule

DEFAULT_CLIENT_ID = "centralmon-sim-client"
DEFAULT_CLIENT_SECRET = "centralmon-sim-secret"
DEFAULT_SCOPE = "central-monitoring-external-api-prod/read"

ROUTE_V1_SCROLL = "/v1/logs/scroll"
ROUTE_V2_SCROLL = "/v2/logs/scroll"
ROUTE_V1_BATCH = "/v1/logs/batch"
ROUTE_V2_BATCH = "/v2/logs/batch"
ROUTE_V1_BATCH_URLS = "/v1/logs/batch/urls"
ROUTE_V1_BATCH_STATUS = "/v1/logs/batch/status"
ROUTE_V2_BATCH_URLS = "/v2/logs/batch/urls"
ROUTE_V2_BATCH_STATUS = "/v2/logs/batch/status"
ROUTE_V1_QUERY = "/v1/query"
ROUTE_V2_QUERY = "/v2/query"
TOKEN_PATH = "/oauth2/token"
PRESIGNED_PREFIX = "/_s3/cm-api-logs"

API_ROUTES = (
    ROUTE_V1_SCROLL,
    ROUTE_V2_SCROLL,
    ROUTE_V1_BATCH,
    ROUTE_V2_BATCH,
    ROUTE_V1_BATCH_URLS,
    ROUTE_V1_BATCH_STATUS,
    ROUTE_V2_BATCH_URLS,
    ROUTE_V2_BATCH_STATUS,
    ROUTE_V1_QUERY,
    ROUTE_V2_QUERY,
)

# The route whose daily quota a call spends: the status routes share the batch quota.
QUOTA_GROUP = {
    ROUTE_V1_BATCH_URLS: ROUTE_V1_BATCH,
    ROUTE_V1_BATCH_STATUS: ROUTE_V1_BATCH,
    ROUTE_V2_BATCH_URLS: ROUTE_V2_BATCH,
    ROUTE_V2_BATCH_STATUS: ROUTE_V2_BATCH,
}

# Daily quotas as the vendor's rate-limit pages state them: V1 per route, V2 100 a route.
DEFAULT_QUOTAS: dict[str, int | None] = {
    ROUTE_V1_SCROLL: 500,
    ROUTE_V1_BATCH: 50,
    ROUTE_V1_QUERY: 500,
    ROUTE_V2_SCROLL: 100,
    ROUTE_V2_BATCH: 100,
    ROUTE_V2_QUERY: 100,
}

# Bounds that keep the generated dataset and the clock arithmetic finite.
MAX_SPAN = timedelta(days=366)
MAX_RECORDS_PER_MINUTE = 100_000.0
MAX_LIFETIME_S = 366 * 86_400


def check_loopback_host(host: str) -> str:
    """Return ``host`` if it is ``localhost`` or an IPv4 loopback address; raise otherwise.

    The simulator's admin routes change its state without any credential, and its test
    client's secret is printed: it must never listen where other machines reach it.
    """
    try:
        loopback = host == "localhost" or ipaddress.IPv4Address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"{host!r} is not a loopback address: use 127.0.0.1 (or 127.x.y.z)")
    return host


PendingShape = Literal["null_url", "absent_url", "no_entries"]


@dataclass(frozen=True, kw_only=True)
class ClientConfig:
    """An OAuth2 client the token endpoint knows.

    :param client_id: the client id
    :param client_secret: the client secret
    :param scopes: scopes the client may request; all of them are granted when it asks for
        none, as Cognito does. Default: the read scope.
    :param routes: API paths the client may call; ``None`` (default) grants every route
    :param allow_client_credentials: whether the client may use the client-credentials
        grant; ``False`` makes the token endpoint answer ``unauthorized_client``
    """

    client_id: str
    client_secret: str
    scopes: tuple[str, ...] = (DEFAULT_SCOPE,)
    routes: frozenset[str] | None = None
    allow_client_credentials: bool = True

    def __repr__(self) -> str:
        # The secret must never reach a log line or an assertion message.
        return f"ClientConfig(client_id={self.client_id!r}, scopes={self.scopes!r})"


DEFAULT_CLIENT = ClientConfig(client_id=DEFAULT_CLIENT_ID, client_secret=DEFAULT_CLIENT_SECRET)


@dataclass(frozen=True, kw_only=True)
class SimulatorSettings:
    """Behaviour of one simulator instance.

    :param seed: seed of the generated records and of random faults. Default 42.
    :param applications: applications the search routes accept. Default the four known ones.
    :param domains: domains the records are spread over. Default three made-up domains.
    :param span: how far back the records reach from ``dataset_end``. Default one day.
    :param dataset_end: instant after which no record exists (timezone-aware). Default: the
        clock's now when the app is built, floored to the minute.
    :param records_per_minute: records per minute and per application. Default 10.
    :param total_records: if set, the number of records over the whole span, spread evenly
        over the applications; overrides ``records_per_minute``. Default unset.
    :param clients: OAuth2 clients. Default: one client with the documented test credentials,
        granted every route.
    :param token_lifetime_s: ``expires_in`` of issued tokens, seconds. Default 3600.
    :param required_scope: scope every API route demands (403 otherwise); ``None`` disables
        the check. Default the read scope.
    :param quotas: daily quota per route path; ``None`` or a missing path means unlimited.
        Default as the vendor states: scroll 500, batch 50, query 500, V2 routes 100.
    :param scroll_continuation_costs_quota: whether a scroll call carrying only a
        ``scroll_id`` spends quota. Unknown for the real service. Default ``False``.
    :param batch_status_costs_quota: whether asking for batch URLs spends the batch quota.
        Unknown for the real service. Default ``False``.
    :param default_page_size: scroll page size when ``size`` is absent. Default 1000.
    :param max_page_size: largest accepted ``size``; larger is a 400. Default 10000.
    :param scroll_idle_timeout_s: a cursor unused for this long expires, seconds of the
        simulator clock. Default 300.
    :param scroll_expired_status: status of a reply to an unknown or expired ``scroll_id``
        (400 or 404). Unknown for the real service. Default 404.
    :param unwrap_scroll_hits: send scroll records as bare ``_source`` objects instead of
        OpenSearch hits. Unknown for the real service. Default ``False``.
    :param batch_ready_delay_s: seconds of the simulator clock before a batch is ready.
        Default 0.
    :param batch_pending_polls: number of URL requests answered "not ready" before a batch
        can be ready, whatever the clock says. Default 0.
    :param batch_pending_status: ``status`` of a batch that is not ready. Default
        ``"processing"``.
    :param batch_pending_shape: what a not-ready reply looks like, unknown for the real
        service: ``"null_url"`` (entries with ``presigned_url: null``, the default),
        ``"absent_url"`` (entries without the key) or ``"no_entries"`` (an empty list).
    :param batch_fail: make every batch end with ``status: "failed"``. Default ``False``.
    :param batch_records_per_file: most records in one batch file. Default 100,000.
    :param presigned_url_lifetime_s: lifetime of a presigned URL, seconds. Default 3600.
    :param faults: faults active from the start. Default none.
    """

    seed: int = 42
    applications: tuple[str, ...] = ("atr", "klewer", "eventops", "quasar")
    domains: tuple[str, ...] = ("acme-prod", "globex-uat", "initech-dev")
    span: timedelta = timedelta(days=1)
    dataset_end: datetime | None = None
    records_per_minute: float = 10.0
    total_records: int | None = None
    clients: tuple[ClientConfig, ...] = (DEFAULT_CLIENT,)
    token_lifetime_s: int = 3600
    required_scope: str | None = DEFAULT_SCOPE
    quotas: dict[str, int | None] = field(default_factory=lambda: dict(DEFAULT_QUOTAS))
    scroll_continuation_costs_quota: bool = False
    batch_status_costs_quota: bool = False
    default_page_size: int = 1000
    max_page_size: int = 10_000
    scroll_idle_timeout_s: float = 300.0
    scroll_expired_status: int = 404
    unwrap_scroll_hits: bool = False
    batch_ready_delay_s: float = 0.0
    batch_pending_polls: int = 0
    batch_pending_status: str = "processing"
    batch_pending_shape: PendingShape = "null_url"
    batch_fail: bool = False
    batch_records_per_file: int = 100_000
    presigned_url_lifetime_s: int = 3600
    faults: tuple[FaultRule, ...] = ()

    def __post_init__(self) -> None:
        if self.scroll_expired_status not in (400, 404):
            raise ValueError("scroll_expired_status must be 400 or 404")
        if self.batch_pending_shape not in ("null_url", "absent_url", "no_entries"):
            raise ValueError("batch_pending_shape must be null_url, absent_url or no_entries")
        if self.default_page_size < 1 or self.max_page_size < self.default_page_size:
            raise ValueError("page sizes must satisfy 1 <= default_page_size <= max_page_size")
        if self.batch_records_per_file < 1:
            raise ValueError("batch_records_per_file must be at least 1")
        if self.dataset_end is not None and self.dataset_end.tzinfo is None:
            raise ValueError("dataset_end must be timezone-aware")
        self._check_numbers()
        self._check_quotas()

    def _check_numbers(self) -> None:
        if not timedelta(0) < self.span <= MAX_SPAN:
            raise ValueError(f"span must be positive and at most {MAX_SPAN.days} days")
        if not 0 < self.records_per_minute <= MAX_RECORDS_PER_MINUTE:
            # Also refuses NaN, which every comparison fails.
            raise ValueError(
                f"records_per_minute must be above 0 and at most {MAX_RECORDS_PER_MINUTE}"
            )
        if self.total_records is not None and self.total_records < 0:
            raise ValueError("total_records cannot be negative")
        for name in ("token_lifetime_s", "presigned_url_lifetime_s", "scroll_idle_timeout_s"):
            if not 0 < getattr(self, name) <= MAX_LIFETIME_S:
                raise ValueError(f"{name} must be above 0 and at most {MAX_LIFETIME_S} seconds")
        if not 0 <= self.batch_ready_delay_s <= MAX_LIFETIME_S or self.batch_pending_polls < 0:
            raise ValueError("batch_ready_delay_s and batch_pending_polls cannot be negative")

    def _check_quotas(self) -> None:
        for route, limit in self.quotas.items():
            if route not in API_ROUTES:
                raise ValueError(f"quota for unknown route {route!r}; routes: {API_ROUTES}")
            if limit is not None and limit < 0:
                raise ValueError(f"the quota of {route} cannot be negative")

    def quota_limit(self, route: str) -> int | None:
        """Return the daily quota of the route group ``route`` belongs to, or ``None``."""
        return self.quotas.get(QUOTA_GROUP.get(route, route))
