"""What the sync and the async hook share and that needs no I/O.

Route choice (with the remembered fallback of the batch urls route), reading a reply into a
payload and its :class:`CallMeta`, the quota seen last, the one log line per call, sealing.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec

from airflow_provider_centralmon._compat import mask_secret
from airflow_provider_centralmon.exceptions import BatchError, InvalidParameterError
from airflow_provider_centralmon.hooks import _sealing
from airflow_provider_centralmon.hooks._replies import RawReply, api_error, next_reset, unwrap
from airflow_provider_centralmon.hooks._retry import RetryBudget, RetryPolicy
from airflow_provider_centralmon.hooks._settings import DEFAULT_ROUTES, ConnectionSettings
from airflow_provider_centralmon.hooks._types import BatchSubmission, CallMeta, QuotaStatus

# The vendor's deprecation notice names this path for the urls route, the API reference names
# the default one. When the default is not overridden and answers 404, this one is tried.
BATCH_URLS_FALLBACK_ROUTE = "/v1/logs/batch/status"

#: A request body, or a function that builds it each time the request is sent.
RequestBody = Mapping[str, Any] | Callable[[], Mapping[str, Any]]

# (API base URL, operation, path that answered 404) -> the fallback path that then succeeded.
_found_routes: dict[tuple[str, str, str], str] = {}
_found_routes_guard = threading.Lock()


class HookCore:
    """Shared state and pure steps of both hooks.

    Subclasses call :meth:`_init_core` and inherit ``log`` from ``BaseHook``.
    """

    centralmon_conn_id: str

    if TYPE_CHECKING:
        # Provided by BaseHook, whose logger type differs between Airflow versions.
        log: Any

    def _init_core(
        self,
        *,
        max_retries: int,
        clock: Callable[[], float] | None,
        rng: Callable[[], float] | None,
    ) -> None:
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise InvalidParameterError(
                f"max_retries must be a whole number of retries, 0 or more, got {max_retries!r}"
            )
        self._retry_policy = RetryPolicy(max_retries=max_retries)
        self._clock = clock or time.time
        self._rng = rng or random.random
        self._settings: ConnectionSettings | None = None
        self._last_quota: QuotaStatus | None = None

    @property
    def last_quota(self) -> QuotaStatus | None:
        """Return the remaining daily quota seen in the latest reply that stated one (no I/O)."""
        return self._last_quota

    def _budget(self, statuses: frozenset[int]) -> RetryBudget:
        return RetryBudget(self._retry_policy, statuses, self._clock, self._rng)

    def _log_retry(self, what: str, reason: str, budget: RetryBudget, delay_s: float) -> None:
        self.log.warning(
            "%s failed (%s), try %d of %d; retrying in %.1f s",
            what,
            reason,
            budget.retries_done,
            budget.tries_allowed,
            delay_s,
        )

    def _route(self, settings: ConnectionSettings, operation: str) -> str:
        route = settings.route(operation)
        if operation in settings.overridden:
            # A path the connection sets is used as is, whatever worked for other connections.
            return route
        return _found_routes.get((settings.base_url, operation, route), route)

    @staticmethod
    def _fallback_route(settings: ConnectionSettings, operation: str, route: str) -> str | None:
        """Return the path to try after a 404, if the operation has one."""
        if operation != "batch_urls" or "batch_urls" in settings.overridden:
            return None
        return BATCH_URLS_FALLBACK_ROUTE if route == DEFAULT_ROUTES["batch_urls"] else None

    def _remember_route(
        self, settings: ConnectionSettings, operation: str, route: str, fallback: str, status: int
    ) -> None:
        """Remember a fallback path after the default one answered 404, if it worked.

        Only a 2xx proves the fallback is the operation's path: a 404 of the default path can
        also mean "no such export", and a 403 or 5xx of the fallback proves nothing.
        """
        if not 200 <= status < 300:
            self.log.warning("%s answered 404, and %s answered %s instead", route, fallback, status)
            return
        self.log.warning(
            "%s answered 404; %s works instead and is used for the rest of this process. "
            "Set it in extra `routes` of connection %r to skip the detour",
            route,
            fallback,
            settings.conn_id,
        )
        with _found_routes_guard:
            _found_routes[(settings.base_url, operation, route)] = fallback

    def _accept(
        self,
        reply: RawReply,
        *,
        route: str,
        settings: ConnectionSettings,
        elapsed_s: float,
        count: Callable[[Any], int | None] | None = None,
    ) -> tuple[Any, CallMeta]:
        """Return the payload and meta of a successful reply, or raise the matching error."""
        if not 200 <= reply.status < 300:
            self.log.info("POST %s -> %s in %.2f s", route, reply.status, elapsed_s)
            last = self._last_quota
            error = api_error(
                reply,
                route=route,
                conn_id=settings.conn_id,
                now=self._clock(),
                last_remaining=last.remaining if last and last.route == route else None,
            )
            if reply.status == 429:
                self._note_quota(route, 0)
            raise error

        envelope = unwrap(reply, route)
        records = count(envelope.payload) if count else None
        meta = CallMeta(
            route=route,
            http_status=reply.status,
            request_id=envelope.request_id,
            daily_remaining=envelope.daily_remaining,
            elapsed_s=elapsed_s,
            records=records,
        )
        self._note_quota(route, envelope.daily_remaining)
        self.log.info(
            "POST %s -> %s in %.2f s, records: %s, request id: %s, calls left today: %s",
            route,
            reply.status,
            elapsed_s,
            "-" if records is None else records,
            meta.request_id or "-",
            "?" if meta.daily_remaining is None else meta.daily_remaining,
        )
        return envelope.payload, meta

    def _note_quota(self, route: str, remaining: int | None) -> None:
        if remaining is None:
            return
        now = self._clock()
        self._last_quota = QuotaStatus(
            route=route,
            remaining=remaining,
            observed_at=datetime.fromtimestamp(now, tz=UTC),
            resets_at=next_reset(now),
        )

    def _seal_with(self, settings: ConnectionSettings, secret: str) -> str:
        return _sealing.seal(
            secret, client_id=settings.client_id, client_secret=settings.client_secret
        )

    def _unseal_with(self, settings: ConnectionSettings, sealed: str) -> str:
        return _sealing.unseal(
            sealed,
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            conn_id=settings.conn_id,
        )


class OutgoingBody:
    """The body of one logical call, built anew for every attempt when given as a function.

    A body that depends on the moment it is sent (a relative ``time_range``) must not be
    built once and then replayed by retries: the service reads it at each attempt. The body
    built last is kept, since it is the one the final reply answers.

    :param body: the body, or a function returning it
    """

    def __init__(self, body: RequestBody) -> None:
        self._build = body if callable(body) else None
        self.sent: Mapping[str, Any] = {} if callable(body) else body

    def encode(self) -> bytes:
        """Build the body of the next attempt and return it as JSON."""
        if self._build is not None:
            built = self._build()
            if not isinstance(built, Mapping):
                raise InvalidParameterError(
                    "a request body function must return a mapping of request fields, "
                    f"not {type(built).__name__}"
                )
            self.sent = built
        return msgspec.json.encode(self.sent)


def count_list(key: str) -> Callable[[Any], int | None]:
    """Return a counter of the records under ``key`` of a payload, for the call's log line."""

    def count(payload: Any) -> int | None:
        items = payload.get(key) if isinstance(payload, Mapping) else payload
        return len(items) if isinstance(items, list) else None

    return count


def submission(payload: Any, meta: CallMeta) -> BatchSubmission:
    """Read the reply of the batch route."""
    token = payload.get("token") if isinstance(payload, Mapping) else None
    if not isinstance(token, str) or not token:
        raise BatchError(
            f"{meta.route} accepted the export but replied without a token",
            http_status=meta.http_status,
            request_id=meta.request_id,
        )
    mask_secret(token)
    return BatchSubmission(
        batch_token=token,
        daily_remaining=meta.daily_remaining,
        request_id=meta.request_id,
        echo=payload.get("logs"),
    )


def lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Return headers with lower-case names, whatever the HTTP library's mapping."""
    return {name.lower(): value for name, value in headers.items()}
