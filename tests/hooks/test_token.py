from __future__ import annotations

import asyncio
import threading
import time

import pytest
from hook_fakes import ManualClock

from airflow_provider_centralmon.exceptions import ServiceError
from airflow_provider_centralmon.hooks._token import (
    AccessToken,
    AsyncTokenSource,
    SyncTokenSource,
    TokenState,
    token_state,
)

KEY = ("https://auth.cm.test/oauth2/token", "client-id-1234", None, "secret-digest")


class CountingFetch:
    """A token source that counts its calls and can be told to fail."""

    def __init__(self, clock: ManualClock, lifetime_s: float = 3600) -> None:
        self.clock = clock
        self.lifetime_s = lifetime_s
        self.calls = 0
        self.fail = False
        self.delay_s = 0.0

    def issue(self) -> AccessToken:
        self.calls += 1
        if self.fail:
            raise ServiceError("token endpoint down")
        return AccessToken(f"value-{self.calls}", self.clock(), self.lifetime_s)

    def __call__(self) -> AccessToken:
        if self.delay_s:
            # Widens the window in which other threads find the token due.
            time.sleep(self.delay_s)
        return self.issue()

    async def fetch_async(self) -> AccessToken:
        await asyncio.sleep(self.delay_s)
        return self.issue()


def test_state_moves_from_fresh_to_advisory_at_75_percent_to_mandatory_60_s_before() -> None:
    token = AccessToken("v", obtained_at=1000.0, lifetime_s=3600)

    assert token_state(token, 1000.0) is TokenState.FRESH
    assert token_state(token, 1000.0 + 2699) is TokenState.FRESH
    assert token_state(token, 1000.0 + 2700) is TokenState.REFRESH_IF_YOU_CAN
    assert token_state(token, 1000.0 + 3539) is TokenState.REFRESH_IF_YOU_CAN
    assert token_state(token, 1000.0 + 3540) is TokenState.MUST_REFRESH
    assert token_state(None, 0.0) is TokenState.MUST_REFRESH


def test_short_lived_token_is_never_refreshed_before_it_was_used() -> None:
    token = AccessToken("v", obtained_at=0.0, lifetime_s=60)

    # The margin shrinks with the lifetime: a 60 s token is usable for 45 s, not 0 s.
    assert token_state(token, 44.9) is TokenState.FRESH
    assert token_state(token, 45.0) is TokenState.MUST_REFRESH


def test_thousand_gets_fetch_one_token(clock: ManualClock) -> None:
    fetch = CountingFetch(clock)
    source = SyncTokenSource(key=KEY, fetch=fetch, clock=clock)

    values = {source.get().value for _ in range(1000)}

    assert (fetch.calls, values) == (1, {"value-1"})


def test_token_is_shared_by_every_source_with_the_same_key(clock: ManualClock) -> None:
    fetch = CountingFetch(clock)
    first = SyncTokenSource(key=KEY, fetch=fetch, clock=clock)
    second = SyncTokenSource(key=KEY, fetch=fetch, clock=clock)
    other_scope = SyncTokenSource(key=(*KEY[:2], "read"), fetch=fetch, clock=clock)

    assert first.get() is second.get()
    assert other_scope.get() is not first.get()
    assert fetch.calls == 2


def test_refresh_happens_ahead_of_expiry(clock: ManualClock) -> None:
    fetch = CountingFetch(clock)
    source = SyncTokenSource(key=KEY, fetch=fetch, clock=clock)
    source.get()

    clock.advance(2699)
    assert source.get().value == "value-1"
    clock.advance(1)
    assert source.get().value == "value-2"
    assert fetch.calls == 2


def test_failed_advisory_refresh_keeps_the_current_token(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    fetch = CountingFetch(clock)
    source = SyncTokenSource(key=KEY, fetch=fetch, clock=clock)
    first = source.get()
    clock.advance(3000)
    fetch.fail = True

    assert source.get() is first
    assert "keeping the current token" in caplog.text


def test_failed_mandatory_refresh_raises(clock: ManualClock) -> None:
    fetch = CountingFetch(clock)
    source = SyncTokenSource(key=KEY, fetch=fetch, clock=clock)
    source.get()
    clock.advance(3550)
    fetch.fail = True

    with pytest.raises(ServiceError):
        source.get()


def test_invalidate_drops_only_the_token_that_failed(clock: ManualClock) -> None:
    fetch = CountingFetch(clock)
    source = SyncTokenSource(key=KEY, fetch=fetch, clock=clock)
    stale = source.get()
    source.invalidate(stale)
    replacement = source.get()

    # A second caller reports the same stale token late: the replacement must survive.
    source.invalidate(stale)

    assert source.get() is replacement
    assert fetch.calls == 2


def test_token_snapshot_repr_hides_the_value() -> None:
    token = AccessToken("the-bearer-value", obtained_at=0.0, lifetime_s=10)

    assert "the-bearer-value" not in repr(token)


def test_ten_threads_at_expiry_refresh_once(clock: ManualClock) -> None:
    fetch = CountingFetch(clock)
    source = SyncTokenSource(key=KEY, fetch=fetch, clock=clock)
    source.get()
    clock.advance(3599)
    fetch.delay_s = 0.05
    barrier = threading.Barrier(10)
    seen: list[str] = []

    def worker() -> None:
        barrier.wait()
        seen.append(source.get().value)

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert fetch.calls == 2
    assert seen == ["value-2"] * 10


def test_ten_threads_in_the_advisory_window_refresh_once(clock: ManualClock) -> None:
    fetch = CountingFetch(clock)
    source = SyncTokenSource(key=KEY, fetch=fetch, clock=clock)
    source.get()
    clock.advance(3000)
    fetch.delay_s = 0.05
    barrier = threading.Barrier(10)

    def worker() -> None:
        barrier.wait()
        source.get()

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert fetch.calls == 2
    assert source.get().value == "value-2"


async def test_ten_coroutines_at_expiry_refresh_once(clock: ManualClock) -> None:
    fetch = CountingFetch(clock)
    source = AsyncTokenSource(key=KEY, fetch=fetch.fetch_async, clock=clock)
    await source.get()
    clock.advance(3599)
    fetch.delay_s = 0.01

    tokens = await asyncio.gather(*(source.get() for _ in range(10)))

    assert fetch.calls == 2
    assert {token.value for token in tokens} == {"value-2"}


async def test_async_and_sync_sources_share_the_cache(clock: ManualClock) -> None:
    fetch = CountingFetch(clock)
    SyncTokenSource(key=KEY, fetch=fetch, clock=clock).get()

    token = await AsyncTokenSource(key=KEY, fetch=fetch.fetch_async, clock=clock).get()

    assert (token.value, fetch.calls) == ("value-1", 1)


async def test_async_advisory_failure_keeps_the_current_token(clock: ManualClock) -> None:
    fetch = CountingFetch(clock)
    source = AsyncTokenSource(key=KEY, fetch=fetch.fetch_async, clock=clock)
    first = await source.get()
    clock.advance(3000)
    fetch.fail = True

    assert await source.get() is first
    clock.advance(600)
    with pytest.raises(ServiceError):
        await source.get()


def test_threads_waiting_on_a_failed_refresh_share_its_failure(clock: ManualClock) -> None:
    fetch = CountingFetch(clock)
    source = SyncTokenSource(key=KEY, fetch=fetch, clock=clock)
    fetch.fail = True
    fetch.delay_s = 0.2
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def worker() -> None:
        barrier.wait()
        try:
            source.get()
        except ServiceError as error:
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert fetch.calls == 1
    assert [str(error) for error in errors] == ["token endpoint down"] * 8
    assert len({id(error) for error in errors}) == 8

    # The failure is shared only with those who waited for it: a later caller tries again.
    fetch.fail = False
    assert source.get().value == "value-2"


async def test_coroutines_waiting_on_a_failed_refresh_share_its_failure(
    clock: ManualClock,
) -> None:
    fetch = CountingFetch(clock)
    source = AsyncTokenSource(key=KEY, fetch=fetch.fetch_async, clock=clock)
    fetch.fail = True
    fetch.delay_s = 0.01

    results = await asyncio.gather(*(source.get() for _ in range(8)), return_exceptions=True)

    assert fetch.calls == 1
    assert all(isinstance(result, ServiceError) for result in results)
    fetch.fail = False
    assert (await source.get()).value == "value-2"
