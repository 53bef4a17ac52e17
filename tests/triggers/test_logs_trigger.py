"""CentralMonitoringLogsTrigger driven one poll at a time against the simulator."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from batch.support import SCROLL, attach, calls, leaked, record_secrets

from airflow_provider_centralmon._query import LogQuery
from airflow_provider_centralmon._trigger_args import query_to_json
from airflow_provider_centralmon.exceptions import InvalidParameterError
from airflow_provider_centralmon.hooks.centralmon_async import CentralMonitoringAsyncHook
from airflow_provider_centralmon.simulator.clock import ManualClock
from airflow_provider_centralmon.simulator.handle import SimulatorHandle
from airflow_provider_centralmon.triggers.logs import CentralMonitoringLogsTrigger

from .stepping import Stepper

CLASSPATH = "airflow_provider_centralmon.triggers.logs.CentralMonitoringLogsTrigger"


@pytest.fixture
def sim(
    centralmon_simulator_factory: Callable[..., SimulatorHandle], monkeypatch: pytest.MonkeyPatch
) -> SimulatorHandle:
    """A simulator whose logs keep arriving: its records reach an hour past its clock."""
    clock = ManualClock(start=datetime.now(UTC).replace(second=0, microsecond=0))
    handle = centralmon_simulator_factory(
        clock=clock,
        applications=("atr",),
        span=timedelta(hours=2),
        dataset_end=clock.now() + timedelta(hours=1),
    )
    return attach(handle, monkeypatch)


def make_trigger(sim: SimulatorHandle, **kwargs: Any) -> CentralMonitoringLogsTrigger:
    """A trigger waiting for 20 records of the 10 minutes after the simulator's now."""
    start = sim.now()
    options: dict[str, Any] = {
        "centralmon_conn_id": "centralmon_default",
        "query": query_to_json(LogQuery(application="atr", page_size=10)),
        "window": {
            "start": start.isoformat(),
            "end": (start + timedelta(minutes=10)).isoformat(),
        },
        "min_records": 20,
        "deadline": time.time() + 600,
        "poll_interval": 300.0,
        **kwargs,
    }
    return CentralMonitoringLogsTrigger(**options)


def test_serialize_gives_json_arguments_that_rebuild_the_trigger(sim: SimulatorHandle) -> None:
    trigger = make_trigger(
        sim,
        query=query_to_json(LogQuery(application="atr", filters={"level": "ERROR"})),
        window={"time_range": "now-15m"},
        deadline=1_900_000_000.0,
        exponential_backoff=True,
        max_wait=900.0,
        polls_done=1,
        min_daily_remaining=10,
        daily_remaining=50,
    )

    classpath, kwargs = trigger.serialize()

    assert classpath == CLASSPATH
    assert kwargs == {
        "centralmon_conn_id": "centralmon_default",
        "query": {
            "application": "atr",
            "domain": None,
            "app_type": None,
            "filters": {"level": "ERROR"},
            "log_group": None,
            "tenant": None,
            "stage": None,
            "page_size": None,
            "extra_body": {},
            "allow_unknown_application": False,
        },
        "window": {"time_range": "now-15m"},
        "min_records": 20,
        "deadline": 1_900_000_000.0,
        "poll_interval": 300.0,
        "exponential_backoff": True,
        "max_wait": 900.0,
        "polls_done": 1,
        "timestamp_field": "@timestamp",
        "untimed_records": "keep",
        "lower_bound_style": "relative",
        "clock_skew_margin": 300.0,
        "min_daily_remaining": 10,
        "daily_remaining": 50,
        "max_consecutive_failures": 3,
    }
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert CentralMonitoringLogsTrigger(**kwargs).serialize() == (classpath, kwargs)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("query", {"application": "atr", "colour": "red"}),
        ("query", {"application": "nope"}),
        ("min_records", 0),
        ("poll_interval", -1),
        ("poll_interval", float("inf")),
        ("max_wait", float("inf")),
        ("deadline", float("nan")),
        ("untimed_records", "maybe"),
        ("clock_skew_margin", float("inf")),
        ("clock_skew_margin", 1e15),
    ],
)
def test_bad_arguments_are_refused(sim: SimulatorHandle, option: str, value: Any) -> None:
    with pytest.raises(InvalidParameterError):
        make_trigger(sim, **{option: value})


async def test_it_sleeps_first_then_polls_until_enough_records_have_landed(
    sim: SimulatorHandle,
) -> None:
    stepper = Stepper(make_trigger(sim))

    stepper.start()
    assert await stepper.pause() == 300.0
    assert calls(sim, SCROLL) == 0
    stepper.resume()
    assert await stepper.pause() == 300.0
    first_poll_pages = calls(sim, SCROLL)
    sim.clock.advance(timedelta(minutes=5))
    stepper.resume()
    event = await stepper.event()

    assert event == {"status": "success", "records_seen": 20, "polls": 2, "daily_remaining": 98}
    # Poll 2 stopped after the page holding the 20th record of the window: a whole scroll
    # of what it could see would have taken more pages.
    visible = sim.records_between(sim.now() - timedelta(minutes=11), sim.now(), "atr")
    assert first_poll_pages > 0
    assert calls(sim, SCROLL) - first_poll_pages < len(visible) / 10


async def test_exponential_backoff_doubles_the_wait_up_to_max_wait(sim: SimulatorHandle) -> None:
    stepper = Stepper(
        make_trigger(sim, poll_interval=10.0, exponential_backoff=True, max_wait=35.0)
    )

    stepper.start()
    waits = []
    for _ in range(5):
        waits.append(await stepper.pause())
        stepper.resume()
    await stepper.close()

    assert waits == [10.0, 10.0, 20.0, 35.0, 35.0]


async def test_a_passed_deadline_sends_a_timeout_event(sim: SimulatorHandle) -> None:
    event = await Stepper(make_trigger(sim, deadline=time.time() - 1, polls_done=1)).run_to_event()

    assert event["status"] == "timeout"
    assert event["polls"] == 1
    assert "fewer than 20 matching records after 1 polls" in event["message"]
    assert calls(sim, SCROLL) == 0


async def test_a_quota_below_the_floor_stops_before_the_next_scroll(
    centralmon_simulator_factory: Callable[..., SimulatorHandle], monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = attach(
        centralmon_simulator_factory(applications=("atr",), quotas={SCROLL: 3}), monkeypatch
    )
    stepper = Stepper(make_trigger(sim, min_daily_remaining=2))

    event = await stepper.run_to_event()

    assert event["status"] == "error"
    assert event["error_type"] == "QuotaFloorError"
    assert event["remaining"] == 1
    assert "min_daily_remaining=2" in event["message"]
    # Two scrolls were opened, each spending one call; the third was not.
    assert sim.state.quotas.remaining(sim.client_id, SCROLL) == 1


async def test_the_quota_the_task_saw_last_is_respected(sim: SimulatorHandle) -> None:
    stepper = Stepper(make_trigger(sim, min_daily_remaining=10, daily_remaining=9))

    event = await stepper.run_to_event()

    assert event["error_type"] == "QuotaFloorError"
    assert calls(sim, SCROLL) == 0


async def test_an_exhausted_quota_sends_an_error_event(sim: SimulatorHandle) -> None:
    sim.set_faults(f"{SCROLL}=rate_limit")

    event = await Stepper(make_trigger(sim)).run_to_event()

    assert event["status"] == "error"
    assert event["error_type"] == "QuotaExhaustedError"
    assert event["resets_at"] is not None
    assert calls(sim, SCROLL) == 1


async def test_polls_failing_in_a_row_end_the_trigger_instead_of_spinning(
    sim: SimulatorHandle,
) -> None:
    sim.set_faults(f"{SCROLL}=error,status=502")
    stepper = Stepper(make_trigger(sim, max_consecutive_failures=2))

    event = await stepper.run_to_event()

    assert event["status"] == "error"
    assert event["error_type"] == "ServiceError"
    assert len(stepper.waits) == 2
    assert calls(sim, SCROLL) == 2 * 5


class BusyFirstScroll(httpx.AsyncBaseTransport):
    """Answers the first scroll call (no scroll_id) ``busy`` times with a 503 and
    ``Retry-After: 120``, then passes every request on to the simulator."""

    def __init__(self, busy: int) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.busy = busy
        self.first_time_ranges: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == SCROLL:
            body = json.loads(await request.aread())
            if "scroll_id" not in body:
                self.first_time_ranges.append(body["time_range"])
                if self.busy > 0:
                    self.busy -= 1
                    return httpx.Response(503, headers={"Retry-After": "120"}, content=b"busy")
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        # Each call of the hook opens and closes a client; the pool outlives them.
        pass


async def test_retries_of_the_first_call_keep_the_start_of_the_window(
    sim: SimulatorHandle,
) -> None:
    end = sim.now() - timedelta(minutes=2)
    start = end - timedelta(minutes=30)
    in_window = len(sim.records_between(start, end, "atr"))
    window = {"start": start.isoformat(), "end": end.isoformat()}
    trigger = make_trigger(sim, window=window, min_records=in_window, poll_interval=1.0)
    stepper = Stepper(trigger)
    transport = BusyFirstScroll(busy=4)

    async def wait_on_the_clock(seconds: float) -> None:
        sim.clock.advance(seconds)

    trigger._new_hook = lambda: CentralMonitoringAsyncHook(
        trigger.centralmon_conn_id, transport=transport, sleep=wait_on_the_clock
    )
    try:
        stepper.start()
        await stepper.pause()
        stepper.resume()
        event = await stepper.event()
    finally:
        await transport.inner.aclose()

    assert event == {
        "status": "success",
        "records_seen": in_window,
        "polls": 1,
        "daily_remaining": 99,
    }
    assert len(set(transport.first_time_ranges)) == 5


async def test_records_outside_the_window_are_not_counted(sim: SimulatorHandle) -> None:
    # The window ended before the simulator's now: a scroll reaching back 40 minutes sees
    # records after the window too, which must not count.
    end = sim.now() - timedelta(minutes=20)
    window = {"start": (end - timedelta(minutes=1)).isoformat(), "end": end.isoformat()}
    in_window = len(sim.records_between(end - timedelta(minutes=1), end, "atr"))
    trigger = make_trigger(sim, window=window, min_records=in_window + 1, poll_interval=1.0)
    stepper = Stepper(trigger)

    stepper.start()
    await stepper.pause()
    stepper.resume()
    await stepper.pause()
    await stepper.close()

    assert calls(sim, SCROLL) > 2
    assert 0 < in_window < 30


async def test_no_secret_reaches_the_arguments_the_events_or_the_logs(
    sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch, logs: Callable[[], str]
) -> None:
    secrets = record_secrets(sim, monkeypatch)
    sim.clock.advance(timedelta(minutes=6))
    trigger = make_trigger(sim, window={"time_range": "now-5m"})

    event = await Stepper(trigger).run_to_event()

    assert event["status"] == "success"
    assert len(secrets) >= 2
    assert leaked(secrets, trigger.serialize(), event, logs()) == []
