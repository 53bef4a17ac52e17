"""Asynchronous hook for the Central Monitoring API (on httpx), for triggers."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeVar

import httpx

from airflow_provider_centralmon._compat import BaseHook
from airflow_provider_centralmon.exceptions import CentralMonitoringError, ServiceError
from airflow_provider_centralmon.hooks._batch_files import batch_status
from airflow_provider_centralmon.hooks._core import (
    HookCore,
    OutgoingBody,
    RequestBody,
    count_list,
    lower_headers,
)
from airflow_provider_centralmon.hooks._oauth import read_token_reply, token_request
from airflow_provider_centralmon.hooks._replies import RawReply, redirect_error, request_secrets
from airflow_provider_centralmon.hooks._retry import (
    API_RETRY_STATUSES,
    TOKEN_RETRY_STATUSES,
    HttpOutcome,
)
from airflow_provider_centralmon.hooks._scroll import ScrollCursor
from airflow_provider_centralmon.hooks._settings import (
    ConnectionSettings,
    check_ca_bundle,
    settings_from_connection,
)
from airflow_provider_centralmon.hooks._token import AccessToken, AsyncTokenSource
from airflow_provider_centralmon.hooks._types import BatchStatus, CallMeta, ScrollPage

_T = TypeVar("_T")


class CentralMonitoringAsyncHook(BaseHook, HookCore):
    """Call the Central Monitoring API from a trigger, without blocking the event loop.

    It shares the access token of the process with :class:`CentralMonitoringHook` and follows
    the same retry rules and error classes. The connection is read without blocking: with
    Airflow's asynchronous getter where it exists (Airflow 3), in a worker thread otherwise.

    :param centralmon_conn_id: id of a ``centralmon`` connection; default ``centralmon_default``
    :param max_retries: retries of a failed call (network, timeout, 5xx, token endpoint 429)
        before giving up; default 4, 0 disables retrying
    :param transport: httpx transport to send through instead of the network, for tests;
        default None
    :param clock: returns the current time in epoch seconds; default :func:`time.time`
    :param sleep: coroutine function waiting a number of seconds between retries; default
        :func:`asyncio.sleep`
    :param rng: random numbers in [0, 1) for the backoff jitter; default :func:`random.random`
    :param kwargs: passed to Airflow's ``BaseHook``
    """

    conn_name_attr = "centralmon_conn_id"
    default_conn_name = "centralmon_default"

    def __init__(
        self,
        centralmon_conn_id: str = default_conn_name,
        *,
        max_retries: int = 4,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        rng: Callable[[], float] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.centralmon_conn_id = centralmon_conn_id
        self._init_core(max_retries=max_retries, clock=clock, rng=rng)
        self._transport = transport
        self._sleep = sleep or asyncio.sleep
        self._tokens: AsyncTokenSource | None = None

    async def get_settings(self) -> ConnectionSettings:
        """Read and validate the connection once, without blocking the event loop."""
        if self._settings is None:
            if hasattr(BaseHook, "aget_connection"):
                conn = await self.aget_connection(self.centralmon_conn_id)
            else:
                conn = await asyncio.to_thread(self.get_connection, self.centralmon_conn_id)
            self._settings = settings_from_connection(conn)
        return self._settings

    async def get_batch_files(self, batch_token: str) -> BatchStatus:
        """Return the result files of a batch export and whether they are ready.

        :param batch_token: the token of a submitted export (unsealed)
        """
        settings = await self.get_settings()
        async with self._client(settings) as client:
            payload, meta = await self._call(
                client, "batch_urls", {"token": batch_token}, count_list("presigned_urls")
            )
        return batch_status(payload, meta)

    async def scroll(
        self,
        body: Mapping[str, Any] | Callable[[], Mapping[str, Any]],
        *,
        max_pages: int | None = None,
    ) -> AsyncIterator[ScrollPage]:
        """Yield the pages of a scroll until the service has no more.

        :param body: the search body of the first call, or a function returning it. The
            function is called each time the first call is sent, retries included, once the
            access token is at hand: a relative ``time_range`` then counts from that moment.
        :param max_pages: stop after this many pages; default None, no limit
        """
        cursor = ScrollCursor(body, max_pages=max_pages)
        settings = await self.get_settings()
        async with self._client(settings) as client:
            while (request := cursor.next_request()) is not None:
                try:
                    payload, meta = await self._call(client, "scroll", request, count_list("logs"))
                except CentralMonitoringError as error:
                    expired = cursor.expired(error)
                    if expired is None:
                        raise
                    raise expired from None
                yield cursor.accept(payload, meta)

    def seal(self, secret: str) -> str:
        """Encrypt a secret (a batch token) with a key derived from the connection's secret.

        Reads the connection synchronously if :meth:`get_settings` has not run yet; in a
        trigger, prefer :meth:`aseal`.
        """
        return self._seal_with(self._settings or self._read_settings_blocking(), secret)

    def unseal(self, sealed: str) -> str:
        """Decrypt a value made by ``seal`` with the same connection's credentials.

        Reads the connection synchronously if :meth:`get_settings` has not run yet; in a
        trigger, prefer :meth:`aunseal`.
        """
        return self._unseal_with(self._settings or self._read_settings_blocking(), sealed)

    async def aseal(self, secret: str) -> str:
        """Encrypt a secret like :meth:`seal`, reading the connection without blocking."""
        return self._seal_with(await self.get_settings(), secret)

    async def aunseal(self, sealed: str) -> str:
        """Decrypt a sealed value like :meth:`unseal`, reading the connection without blocking."""
        return self._unseal_with(await self.get_settings(), sealed)

    # -- internals ----------------------------------------------------------------------------

    def _read_settings_blocking(self) -> ConnectionSettings:
        self._settings = settings_from_connection(self.get_connection(self.centralmon_conn_id))
        return self._settings

    def _client(self, settings: ConnectionSettings) -> httpx.AsyncClient:
        verify: bool | ssl.SSLContext = (
            settings.verify
            if isinstance(settings.verify, bool)
            # httpx deprecates a CA bundle path as `verify`; it takes an SSL context instead.
            else check_ca_bundle(settings.conn_id, settings.verify)
        )
        return httpx.AsyncClient(
            transport=self._transport, timeout=settings.timeout_s, verify=verify
        )

    def _token_source(self, settings: ConnectionSettings) -> AsyncTokenSource:
        if self._tokens is None:
            self._tokens = AsyncTokenSource(
                key=settings.token_key,
                fetch=lambda: self._fetch_token(settings),
                clock=self._clock,
            )
        return self._tokens

    async def _call(
        self,
        client: httpx.AsyncClient,
        operation: str,
        body: RequestBody,
        count: Callable[[Any], int | None] | None = None,
    ) -> tuple[Any, CallMeta]:
        settings = await self.get_settings()
        route = self._route(settings, operation)
        outgoing = OutgoingBody(body)
        started = time.perf_counter()
        reply = await self._authorized_post(client, settings, route, outgoing)
        fallback = self._fallback_route(settings, operation, route)
        if reply.status == 404 and fallback:
            fallback_reply = await self._authorized_post(client, settings, fallback, outgoing)
            # Only a success proves the fallback is the route: a gateway answers 403 for a
            # path it does not know, which must not hide the 404 of the documented route.
            if 200 <= fallback_reply.status < 300:
                self._remember_route(settings, operation, route, fallback, fallback_reply.status)
                route, reply = fallback, fallback_reply
        elapsed_s = time.perf_counter() - started
        return self._accept(reply, route=route, settings=settings, elapsed_s=elapsed_s, count=count)

    async def _authorized_post(
        self,
        client: httpx.AsyncClient,
        settings: ConnectionSettings,
        route: str,
        body: OutgoingBody,
    ) -> RawReply:
        """POST with the shared token; on a 401, renew the token and try exactly once more."""
        tokens = self._token_source(settings)
        token = await tokens.get()
        reply = await self._post(client, settings, route, body, token)
        if reply.status != 401:
            return reply

        self.log.info("%s answered 401: renewing the access token, attempt 2 of 2", route)
        tokens.invalidate(token)
        return await self._post(client, settings, route, body, await tokens.get())

    async def _post(
        self,
        client: httpx.AsyncClient,
        settings: ConnectionSettings,
        route: str,
        body: OutgoingBody,
        token: AccessToken,
    ) -> RawReply:
        headers = {
            "Authorization": f"Bearer {token.value}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        url = settings.base_url + route
        where = f"POST {route}"
        return await self._with_retries(
            where,
            API_RETRY_STATUSES,
            lambda: self._exchange(
                client, "POST", url, where, headers=headers, content=body.encode()
            ),
        )

    async def _fetch_token(self, settings: ConnectionSettings) -> AccessToken:
        request = token_request(settings)
        where = f"The token endpoint {settings.auth_url}"
        sent_at = self._clock()
        async with self._client(settings) as client:
            reply = await self._with_retries(
                where,
                TOKEN_RETRY_STATUSES,
                lambda: self._exchange(
                    client, "POST", request.url, where, headers=request.headers, data=request.form
                ),
            )
        return read_token_reply(reply, settings, sent_at)

    async def _with_retries(
        self, what: str, statuses: frozenset[int], send: Callable[[], Awaitable[RawReply]]
    ) -> RawReply:
        """Send until the outcome is final; the decision is :class:`RetryBudget`'s."""
        budget = self._budget(statuses)
        while True:
            try:
                reply = await send()
            except ServiceError as error:
                delay = budget.judge(error)
                if delay is None:
                    raise
                self._log_retry(what, str(error), budget, delay)
            else:
                delay = budget.judge(HttpOutcome(reply.status, reply.headers))
                if delay is None:
                    return reply
                self._log_retry(what, f"status {reply.status}", budget, delay)
            await self._sleep(delay)

    async def _exchange(
        self, client: httpx.AsyncClient, method: str, url: str, where: str, **kwargs: Any
    ) -> RawReply:
        # httpx follows no redirect unless asked to; a 3xx is refused like the sync hook's.
        response = await self._guarded(
            where, lambda: client.request(method, url, follow_redirects=False, **kwargs)
        )
        secrets = request_secrets(
            kwargs.get("headers"), kwargs.get("content") or kwargs.get("data")
        )
        reply = RawReply(
            response.status_code, lower_headers(response.headers), response.content, secrets
        )
        redirect = redirect_error(reply, url, where)
        if redirect is not None:
            raise redirect
        return reply

    async def _guarded(self, where: str, step: Callable[[], Awaitable[_T]]) -> _T:
        """Await one step of HTTP I/O, translating httpx's exceptions; the only place that does.

        Their messages are dropped: they can quote the URL and its query string. The error is
        raised after the except block so that it does not keep them as ``__context__`` either.
        """
        try:
            return await step()
        except httpx.TimeoutException:
            timeout_s = self._settings.timeout_s if self._settings else float("nan")
            failure = f"timed out after {timeout_s:g} s (extra `timeout`)"
        except httpx.HTTPError as error:
            failure = f"failed: {type(error).__name__}"
        raise ServiceError(f"{where} {failure}")
