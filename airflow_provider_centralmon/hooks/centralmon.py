"""Hook for the Central Monitoring logs API (synchronous, on requests)."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator, Mapping
from functools import cached_property
from typing import Any, TypeVar

import requests
from requests.adapters import BaseAdapter

from airflow_provider_centralmon._compat import BaseHook
from airflow_provider_centralmon._connection_form import (
    legacy_field_behaviour,
    legacy_form_widgets,
)
from airflow_provider_centralmon.exceptions import (
    CentralMonitoringError,
    PresignedUrlExpiredError,
    ProtocolError,
    ServiceError,
)
from airflow_provider_centralmon.hooks._batch_files import (
    JsonArraySplitter,
    batch_status,
    check_download_url,
    download_error,
    mask_query,
    redact_http_debug_logs,
)
from airflow_provider_centralmon.hooks._core import (
    HookCore,
    OutgoingBody,
    RequestBody,
    count_list,
    lower_headers,
    submission,
)
from airflow_provider_centralmon.hooks._oauth import read_token_reply, token_request
from airflow_provider_centralmon.hooks._replies import (
    RawReply,
    redirect_error,
    request_secrets,
    url_for_logs,
)
from airflow_provider_centralmon.hooks._retry import (
    API_RETRY_STATUSES,
    TOKEN_RETRY_STATUSES,
    HttpOutcome,
)
from airflow_provider_centralmon.hooks._scroll import ScrollCursor
from airflow_provider_centralmon.hooks._settings import (
    ConnectionSettings,
    settings_from_connection,
)
from airflow_provider_centralmon.hooks._token import AccessToken, SyncTokenSource
from airflow_provider_centralmon.hooks._types import (
    ApiReply,
    BatchFile,
    BatchStatus,
    BatchSubmission,
    CallMeta,
    QuotaStatus,
    ScrollPage,
)

__all__ = [
    "ApiReply",
    "BatchFile",
    "BatchStatus",
    "BatchSubmission",
    "CallMeta",
    "CentralMonitoringHook",
    "PresignedUrlExpiredError",
    "QuotaStatus",
    "ScrollPage",
]

_T = TypeVar("_T")
DOWNLOAD_CHUNK_BYTES = 256 * 1024


class CentralMonitoringHook(BaseHook, HookCore):
    """Call the Central Monitoring API with the credentials of an Airflow connection.

    One access token per client is shared by every hook, thread and trigger of the process
    and renewed ahead of its expiry. Network failures, timeouts and 5xx replies are retried
    with exponential backoff and jitter; quota, permission and request errors are raised at
    once, as the matching :mod:`~airflow_provider_centralmon.exceptions` class.

    The connection: host = API base URL (default production; ``https://`` unless the host is
    a loopback address), login = client id, password = client secret. Extras: ``auth_url``
    (token endpoint), ``scope`` (default none), ``routes`` (operation to path, operations
    ``scroll``, ``batch``, ``batch_urls``, ``query``), ``timeout`` (seconds to connect and
    between two reads of a reply, not per request; default 60),
    ``verify`` (true, false or a CA bundle path), ``auth_method`` (``client_secret_post``,
    the default, or ``client_secret_basic``). Any other extra is an error.

    :param centralmon_conn_id: id of a ``centralmon`` connection; default ``centralmon_default``
    :param max_retries: retries of a failed call (network, timeout, 5xx, token endpoint 429)
        before giving up; default 4, 0 disables retrying
    :param http_adapter: requests transport adapter to send through instead of the network,
        for tests; default None
    :param clock: returns the current time in epoch seconds; default :func:`time.time`
    :param sleep: waits a number of seconds between retries; default :func:`time.sleep`
    :param rng: random numbers in [0, 1) for the backoff jitter; default :func:`random.random`
    :param kwargs: passed to Airflow's ``BaseHook``
    """

    conn_name_attr = "centralmon_conn_id"
    default_conn_name = "centralmon_default"
    conn_type = "centralmon"
    hook_name = "Central Monitoring"

    def __init__(
        self,
        centralmon_conn_id: str = default_conn_name,
        *,
        max_retries: int = 4,
        http_adapter: BaseAdapter | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
        rng: Callable[[], float] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.centralmon_conn_id = centralmon_conn_id
        self._init_core(max_retries=max_retries, clock=clock, rng=rng)
        self._http_adapter = http_adapter
        self._sleep = sleep or time.sleep

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Return the extra fields of the connection form (Airflow before 3.2)."""
        return legacy_form_widgets()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Return how the standard connection fields are shown (Airflow before 3.2)."""
        return legacy_field_behaviour()

    @property
    def settings(self) -> ConnectionSettings:
        """Return the validated settings of the connection (read once per hook)."""
        if self._settings is None:
            self._settings = settings_from_connection(self.get_connection(self.centralmon_conn_id))
        return self._settings

    def get_conn(self) -> requests.Session:
        """Return the HTTP session of this hook; it never carries credentials by default."""
        return self._session

    def close(self) -> None:
        """Release the hook's pooled connections."""
        if "_session" in self.__dict__:
            self._session.close()

    def __enter__(self) -> CentralMonitoringHook:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def test_connection(self) -> tuple[bool, str]:
        """Obtain a new token with the connection's credentials; call no API route.

        The new token replaces the shared one, so testing costs no extra token later.

        :return: whether it worked, and a message without secrets
        """
        try:
            token = self._tokens.renew()
        except CentralMonitoringError as error:
            return False, str(error)
        except Exception as error:
            # Not from the HTTP stack (translated above), e.g. a connection id Airflow lacks.
            return False, f"Could not test the connection: {type(error).__name__}: {error}"
        return True, f"Obtained an access token; it expires at {token.expiry_text()}"

    # -- public calls -------------------------------------------------------------------------

    def scroll(
        self,
        body: Mapping[str, Any] | Callable[[], Mapping[str, Any]],
        *,
        max_pages: int | None = None,
    ) -> Iterator[ScrollPage]:
        """Yield the pages of a scroll until the service has no more.

        The default route is ``/v2/logs/scroll``: the vendor announced V1 as deprecated from
        2026-03-01. Each continuation sends only the newest ``scroll_id``.

        :param body: the search body of the first call (``application``, ``time_range``, ...),
            or a function returning it. The function is called each time the first call is
            sent, retries included, once the access token is at hand: a relative
            ``time_range`` such as ``now-30m`` then counts from the moment of sending.
        :param max_pages: stop after this many pages; default None, no limit
        """
        cursor = ScrollCursor(body, max_pages=max_pages)
        while (request := cursor.next_request()) is not None:
            try:
                payload, meta = self._call("scroll", request, count_list("logs"))
            except CentralMonitoringError as error:
                expired = cursor.expired(error)
                if expired is None:
                    raise
                raise expired from None
            yield cursor.accept(payload, meta)

    def submit_batch(
        self, body: Mapping[str, Any] | Callable[[], Mapping[str, Any]]
    ) -> BatchSubmission:
        """Start a batch export; the returned token is a secret, seal it before storing it.

        :param body: the search body, or a function returning it, called for each attempt as
            in :meth:`scroll`
        """
        payload, meta = self._call("batch", body if callable(body) else dict(body))
        return submission(payload, meta)

    def get_batch_files(self, batch_token: str) -> BatchStatus:
        """Return the result files of a batch export and whether they are ready.

        :param batch_token: the token of :meth:`submit_batch` (unsealed)
        """
        payload, meta = self._call(
            "batch_urls", {"token": batch_token}, count_list("presigned_urls")
        )
        return batch_status(payload, meta)

    def query(self, body: Mapping[str, Any]) -> ApiReply:
        """Call the query route (ATR billing data) and return its decoded payload.

        :param body: the request body
        """
        payload, meta = self._call("query", dict(body))
        return ApiReply(payload=payload, meta=meta)

    def iter_batch_file(self, url: str) -> Iterator[dict[str, Any]]:
        """Download a batch result file and yield its elements one at a time.

        The file is streamed and decoded element by element, so memory use does not grow with
        its size. No Authorization header is sent: the URL carries its own credential.
        Elements are yielded as the file holds them (OpenSearch hits, the record under
        ``_source``). Opening the download is retried like any call; limitation: a connection
        lost halfway through the file raises :class:`ServiceError` instead of resuming, since
        records already yielded cannot be taken back; download the file again.

        :param url: a presigned URL from :meth:`get_batch_files`
        :raises PresignedUrlExpiredError: the URL has expired; ask for fresh URLs
        """
        check_download_url(url)
        mask_query(url)
        redact_http_debug_logs()
        shown_url = url_for_logs(url)
        where = f"Batch file {shown_url}"

        started = time.perf_counter()
        response = self._with_retries(
            where,
            API_RETRY_STATUSES,
            lambda: self._request("GET", url, where=where, stream=True),
            outcome=lambda r: HttpOutcome(r.status_code, lower_headers(r.headers)),
            discard=lambda r: r.close(),
        )
        with response:
            if response.status_code != 200:
                reply = self._guarded(where, lambda: _raw(response))
                raise download_error(reply, url, where, self._clock())
            count = yield from self._stream_array(response, where)

        elapsed_s = time.perf_counter() - started
        self.log.info("GET %s -> 200 in %.2f s, records: %s", shown_url, elapsed_s, count)

    def seal(self, secret: str) -> str:
        """Encrypt a secret (a batch token) with a key derived from the connection's secret."""
        return self._seal_with(self.settings, secret)

    def unseal(self, sealed: str) -> str:
        """Decrypt a value made by :meth:`seal` with the same connection's credentials."""
        return self._unseal_with(self.settings, sealed)

    # -- internals ----------------------------------------------------------------------------

    @cached_property
    def _session(self) -> requests.Session:
        session = requests.Session()
        if self._http_adapter is not None:
            session.mount("http://", self._http_adapter)
            session.mount("https://", self._http_adapter)
        return session

    @cached_property
    def _tokens(self) -> SyncTokenSource:
        return SyncTokenSource(
            key=self.settings.token_key, fetch=self._fetch_token, clock=self._clock
        )

    def _call(
        self,
        operation: str,
        body: RequestBody,
        count: Callable[[Any], int | None] | None = None,
    ) -> tuple[Any, CallMeta]:
        settings = self.settings
        route = self._route(settings, operation)
        outgoing = OutgoingBody(body)
        started = time.perf_counter()
        reply = self._authorized_post(settings, route, outgoing)
        fallback = self._fallback_route(settings, operation, route)
        if reply.status == 404 and fallback:
            fallback_reply = self._authorized_post(settings, fallback, outgoing)
            # Only a success proves the fallback is the route: a gateway answers 403 for a
            # path it does not know, which must not hide the 404 of the documented route.
            if 200 <= fallback_reply.status < 300:
                self._remember_route(settings, operation, route, fallback, fallback_reply.status)
                route, reply = fallback, fallback_reply
        elapsed_s = time.perf_counter() - started
        return self._accept(reply, route=route, settings=settings, elapsed_s=elapsed_s, count=count)

    def _authorized_post(
        self, settings: ConnectionSettings, route: str, body: OutgoingBody
    ) -> RawReply:
        """POST with the shared token; on a 401, renew the token and try exactly once more."""
        token = self._tokens.get()
        reply = self._post(settings, route, body, token)
        if reply.status != 401:
            return reply

        self.log.info("%s answered 401: renewing the access token, attempt 2 of 2", route)
        self._tokens.invalidate(token)
        return self._post(settings, route, body, self._tokens.get())

    def _post(
        self, settings: ConnectionSettings, route: str, body: OutgoingBody, token: AccessToken
    ) -> RawReply:
        url = settings.base_url + route
        headers = {
            "Authorization": f"Bearer {token.value}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        return self._with_retries(
            f"POST {route}",
            API_RETRY_STATUSES,
            lambda: self._exchange(
                "POST", url, where=f"POST {route}", headers=headers, data=body.encode()
            ),
        )

    def _fetch_token(self) -> AccessToken:
        settings = self.settings
        request = token_request(settings)
        where = f"The token endpoint {settings.auth_url}"
        sent_at = self._clock()
        reply = self._with_retries(
            where,
            TOKEN_RETRY_STATUSES,
            lambda: self._exchange(
                "POST", request.url, where=where, headers=request.headers, data=request.form
            ),
        )
        return read_token_reply(reply, settings, sent_at)

    def _with_retries(
        self,
        what: str,
        statuses: frozenset[int],
        send: Callable[[], _T],
        *,
        outcome: Callable[[_T], HttpOutcome] | None = None,
        discard: Callable[[_T], None] | None = None,
    ) -> _T:
        """Send until the outcome is final; the decision is :class:`RetryBudget`'s."""
        budget = self._budget(statuses)
        while True:
            try:
                result = send()
            except ServiceError as error:
                delay = budget.judge(error)
                if delay is None:
                    raise
                self._log_retry(what, str(error), budget, delay)
            else:
                judged = (outcome or _reply_outcome)(result)
                delay = budget.judge(judged)
                if delay is None:
                    return result
                if discard is not None:
                    discard(result)
                self._log_retry(what, f"status {judged.status}", budget, delay)
            self._sleep(delay)

    def _exchange(self, method: str, url: str, *, where: str, **kwargs: Any) -> RawReply:
        secrets = request_secrets(kwargs.get("headers"), kwargs.get("data"))
        response = self._request(method, url, where=where, **kwargs)
        with response:
            content = self._guarded(where, lambda: response.content)
        return RawReply(response.status_code, lower_headers(response.headers), content, secrets)

    def _request(self, method: str, url: str, *, where: str, **kwargs: Any) -> requests.Response:
        settings = self.settings
        response = self._guarded(
            where,
            lambda: self._session.request(
                method,
                url,
                timeout=settings.timeout_s,
                verify=settings.verify,
                allow_redirects=False,
                **kwargs,
            ),
        )
        redirect = redirect_error(_head(response), url, where)
        if redirect is not None:
            response.close()
            raise redirect
        return response

    def _guarded(self, where: str, step: Callable[[], _T]) -> _T:
        """Run one step of HTTP I/O, translating requests' exceptions; the only place that does.

        Their messages are dropped: they can quote the URL, and with it a presigned signature,
        or the request body. The error is raised after the except block so that it does not
        keep them as ``__context__`` either (which ``raise ... from None`` still sets).
        """
        try:
            return step()
        except requests.Timeout:
            failure = f"timed out after {self.settings.timeout_s:g} s (extra `timeout`)"
        except requests.RequestException as error:
            failure = f"failed: {type(error).__name__}"
        raise ServiceError(f"{where} {failure}")

    def _stream_array(
        self, response: requests.Response, where: str
    ) -> Generator[dict[str, Any], None, int]:
        splitter = JsonArraySplitter(where)
        count = 0
        chunks = response.iter_content(chunk_size=DOWNLOAD_CHUNK_BYTES)
        while True:
            chunk = self._guarded(where, lambda: next(chunks, None))
            if chunk is None:
                break
            for element in splitter.feed(chunk):
                if not isinstance(element, dict):
                    raise ProtocolError(f"{where} holds an element that is not an object")
                count += 1
                yield element
        splitter.close()
        return count


def _reply_outcome(reply: Any) -> HttpOutcome:
    return HttpOutcome(reply.status, reply.headers)


def _head(response: requests.Response) -> RawReply:
    """Return the status and headers of a reply whose body is not read yet."""
    return RawReply(response.status_code, lower_headers(response.headers), b"")


def _raw(response: requests.Response) -> RawReply:
    return RawReply(response.status_code, lower_headers(response.headers), response.content)
