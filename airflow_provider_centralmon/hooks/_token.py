"""Access-token lifecycle: when to refresh, and one shared token per client in the process.

The token endpoint bills every token it issues and rate-limits requests, so a process keeps
exactly one token per (token endpoint, client id and secret, scope) and every hook, thread,
coroutine and trigger reuses it. The decision of when to refresh is a pure function of the
clock; the two shells below add locking (a threading lock, an asyncio lock) around a fetch
function they are given, and do no I/O of their own.

Refresh timing, for a token obtained at ``t0`` that lives ``L`` seconds:

- fresh until ``t0 + 0.75 L`` (and at the latest until the mandatory point below);
- refresh-if-you-can after that: one caller tries to refresh, everyone else keeps using the
  current token, and a failed refresh is only logged because the token still works;
- must-refresh from ``min(60 s, L / 4)`` before expiry: callers wait for a new token and a
  failed refresh is an error, raised to every caller that waited for that refresh (the next
  caller tries again). The margin absorbs clock skew and the duration of the call.
"""

from __future__ import annotations

import asyncio
import copy
import enum
import logging
import threading
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from airflow_provider_centralmon.exceptions import CentralMonitoringError

log = logging.getLogger(__name__)

# (token endpoint, client id, scope, keyed digest of the client secret)
TokenKey = tuple[str, str, str | None, str]
Clock = Callable[[], float]

ADVISORY_FRACTION = 0.75
MANDATORY_AHEAD_S = 60.0
# A reply without a readable lifetime is trusted only briefly; an eternal token would be used
# until the service rejects it, costing a failed call and a retry.
UNKNOWN_LIFETIME_S = 300.0


class TokenState(enum.Enum):
    """What a caller should do with the cached token."""

    FRESH = "fresh"
    REFRESH_IF_YOU_CAN = "refresh-if-you-can"
    MUST_REFRESH = "must-refresh"


@dataclass(frozen=True)
class AccessToken:
    """An immutable snapshot of one issued token.

    :param value: the bearer token; a secret, never shown
    :param obtained_at: when it was issued, epoch seconds
    :param lifetime_s: its lifetime in seconds, as stated or assumed
    :param lifetime_known: whether the token endpoint stated the lifetime
    """

    value: str = field(repr=False)
    obtained_at: float
    lifetime_s: float
    lifetime_known: bool = True

    @property
    def expires_at(self) -> float:
        """Return when the token stops working, epoch seconds."""
        return self.obtained_at + self.lifetime_s

    @property
    def refresh_at(self) -> float:
        """Return when a refresh becomes advisable, epoch seconds."""
        return min(self.obtained_at + ADVISORY_FRACTION * self.lifetime_s, self.must_refresh_at)

    @property
    def must_refresh_at(self) -> float:
        """Return when a refresh becomes mandatory, epoch seconds."""
        return self.expires_at - min(MANDATORY_AHEAD_S, self.lifetime_s / 4)

    def expiry_text(self) -> str:
        """Describe the expiry for a log line (the time, never the value)."""
        moment = datetime.fromtimestamp(self.expires_at, tz=UTC)
        assumed = "" if self.lifetime_known else ", lifetime not stated, assumed"
        return f"{moment:%Y-%m-%d %H:%M:%S} UTC (in {self.lifetime_s:.0f} s{assumed})"


def token_state(token: AccessToken | None, now: float) -> TokenState:
    """Decide what to do with a cached token at time ``now`` (epoch seconds)."""
    if token is None or now >= token.must_refresh_at:
        return TokenState.MUST_REFRESH
    if now >= token.refresh_at:
        return TokenState.REFRESH_IF_YOU_CAN
    return TokenState.FRESH


class _TokenStore:
    """The process-wide map of shared tokens, with one threading lock per key."""

    def __init__(self) -> None:
        self._tokens: dict[TokenKey, AccessToken] = {}
        # Per key: how many mandatory refreshes failed so far, and the latest failure.
        self._failure_counts: dict[TokenKey, int] = {}
        self._last_failure: dict[TokenKey, CentralMonitoringError] = {}
        self._guard = threading.Lock()
        self._thread_locks: dict[TokenKey, threading.Lock] = {}
        self._loop_locks: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[TokenKey, asyncio.Lock]
        ] = weakref.WeakKeyDictionary()

    def peek(self, key: TokenKey) -> AccessToken | None:
        return self._tokens.get(key)

    def put(self, key: TokenKey, token: AccessToken) -> None:
        with self._guard:
            self._tokens[key] = token

    def discard(self, key: TokenKey, failed: AccessToken) -> None:
        # Only the token that actually failed is dropped: if another caller has already
        # replaced it, the replacement stays.
        with self._guard:
            if self._tokens.get(key) is failed:
                del self._tokens[key]

    def failures(self, key: TokenKey) -> int:
        """Return how many mandatory refreshes of a key have failed, to compare later."""
        with self._guard:
            return self._failure_counts.get(key, 0)

    def note_failure(self, key: TokenKey, error: CentralMonitoringError) -> None:
        with self._guard:
            self._failure_counts[key] = self._failure_counts.get(key, 0) + 1
            self._last_failure[key] = error

    def failure_since(self, key: TokenKey, seen: int) -> CentralMonitoringError | None:
        """Return a copy of the latest failure if one happened after ``seen`` was read."""
        with self._guard:
            if self._failure_counts.get(key, 0) == seen:
                return None
            # A copy per caller: one exception raised in many threads would share a traceback.
            return copy.copy(self._last_failure[key])

    def thread_lock(self, key: TokenKey) -> threading.Lock:
        with self._guard:
            return self._thread_locks.setdefault(key, threading.Lock())

    def loop_lock(self, key: TokenKey) -> asyncio.Lock:
        # asyncio locks belong to one event loop; each loop gets its own set.
        loop = asyncio.get_running_loop()
        with self._guard:
            return self._loop_locks.setdefault(loop, {}).setdefault(key, asyncio.Lock())

    def clear(self) -> None:
        with self._guard:
            self._tokens.clear()
            self._failure_counts.clear()
            self._last_failure.clear()


_STORE = _TokenStore()


def clear_token_cache() -> None:
    """Forget every cached token of the process (for tests and credential rotation)."""
    _STORE.clear()


class SyncTokenSource:
    """Hand out the shared token of one client to threads, refreshing it when due.

    :param key: (token endpoint, client id, scope, secret digest) the token belongs to
    :param fetch: obtains a new token from the token endpoint; raises on failure
    :param clock: returns the current time in epoch seconds
    """

    def __init__(self, *, key: TokenKey, fetch: Callable[[], AccessToken], clock: Clock) -> None:
        self._key = key
        self._fetch = fetch
        self._clock = clock

    def get(self) -> AccessToken:
        """Return a usable token, fetching a new one only when the cached one is due."""
        current = _STORE.peek(self._key)
        state = token_state(current, self._clock())
        if state is TokenState.FRESH and current is not None:
            return current

        lock = _STORE.thread_lock(self._key)
        if state is TokenState.REFRESH_IF_YOU_CAN and current is not None:
            # Advisory: whoever gets the lock refreshes; the others need not wait because the
            # current token still works.
            if not lock.acquire(blocking=False):
                return current
            try:
                return self._refresh_or_keep(current)
            finally:
                lock.release()

        # Read before waiting: a refresh that fails while this caller waits for the lock is the
        # refresh it waited for, and its failure is shared instead of repeated (each attempt
        # may take minutes of retries against an endpoint that is down).
        failures_seen = _STORE.failures(self._key)
        with lock:
            return self._refresh_if_still_due(failures_seen)

    def invalidate(self, failed: AccessToken) -> None:
        """Drop a token the API rejected, unless it has already been replaced."""
        _STORE.discard(self._key, failed)

    def renew(self) -> AccessToken:
        """Fetch a new token whatever the state of the cached one, and share it."""
        with _STORE.thread_lock(self._key):
            return self._store(self._fetch())

    def _refresh_or_keep(self, current: AccessToken) -> AccessToken:
        latest = _STORE.peek(self._key)
        if latest is not current and latest is not None:
            return latest
        try:
            return self._store(self._fetch())
        except CentralMonitoringError as error:
            log.warning("Early token refresh failed, keeping the current token: %s", error)
            return current

    def _refresh_if_still_due(self, failures_seen: int) -> AccessToken:
        # Re-check under the lock: another thread may have refreshed while this one waited.
        latest = _STORE.peek(self._key)
        if latest is not None and token_state(latest, self._clock()) is not TokenState.MUST_REFRESH:
            return latest
        shared = _STORE.failure_since(self._key, failures_seen)
        if shared is not None:
            raise shared
        try:
            return self._store(self._fetch())
        except CentralMonitoringError as error:
            _STORE.note_failure(self._key, error)
            raise

    def _store(self, token: AccessToken) -> AccessToken:
        _STORE.put(self._key, token)
        return token


class AsyncTokenSource:
    """Hand out the shared token of one client to coroutines, refreshing it when due.

    It shares the cache with :class:`SyncTokenSource`. Limitation: a thread and a coroutine
    that find the token due at the same instant may both refresh it (they hold different
    locks); the cache then keeps the later token and both stay valid.

    :param key: (token endpoint, client id, scope, secret digest) the token belongs to
    :param fetch: coroutine function obtaining a new token; raises on failure
    :param clock: returns the current time in epoch seconds
    """

    def __init__(
        self, *, key: TokenKey, fetch: Callable[[], Awaitable[AccessToken]], clock: Clock
    ) -> None:
        self._key = key
        self._fetch = fetch
        self._clock = clock

    async def get(self) -> AccessToken:
        """Return a usable token, fetching a new one only when the cached one is due."""
        current = _STORE.peek(self._key)
        state = token_state(current, self._clock())
        if state is TokenState.FRESH and current is not None:
            return current

        lock = _STORE.loop_lock(self._key)
        if state is TokenState.REFRESH_IF_YOU_CAN and current is not None:
            if lock.locked():
                return current
            async with lock:
                return await self._refresh_or_keep(current)

        failures_seen = _STORE.failures(self._key)
        async with lock:
            latest = _STORE.peek(self._key)
            if latest is not None and token_state(latest, self._clock()) is not (
                TokenState.MUST_REFRESH
            ):
                return latest
            shared = _STORE.failure_since(self._key, failures_seen)
            if shared is not None:
                raise shared
            try:
                return self._store(await self._fetch())
            except CentralMonitoringError as error:
                _STORE.note_failure(self._key, error)
                raise

    def invalidate(self, failed: AccessToken) -> None:
        """Drop a token the API rejected, unless it has already been replaced."""
        _STORE.discard(self._key, failed)

    async def _refresh_or_keep(self, current: AccessToken) -> AccessToken:
        latest = _STORE.peek(self._key)
        if latest is not current and latest is not None:
            return latest
        try:
            return self._store(await self._fetch())
        except CentralMonitoringError as error:
            log.warning("Early token refresh failed, keeping the current token: %s", error)
            return current

    def _store(self, token: AccessToken) -> AccessToken:
        _STORE.put(self._key, token)
        return token
