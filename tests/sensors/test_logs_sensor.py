"""CentralMonitoringLogsSensor's pokes, deferral and resumption against the simulator."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from batch.support import SCROLL, attach, calls, leaked, make_context, past_window, record_secrets

from airflow_provider_centralmon._compat import AirflowSensorTimeout, TaskDeferred
from airflow_provider_centralmon.exceptions import (
    InvalidParameterError,
    ProtocolError,
    QuotaExhaustedError,
    QuotaFloorError,
    ServiceError,
)
from airflow_provider_centralmon.sensors.logs import CentralMonitoringLogsSensor
from airflow_provider_centralmon.simulator.handle import SimulatorHandle
from airflow_provider_centralmon.triggers.logs import CentralMonitoringLogsTrigger


@pytest.fixture
def sim(centralmon_simulator: SimulatorHandle, monkeypatch: pytest.MonkeyPatch) -> SimulatorHandle:
    return attach(centralmon_simulator, monkeypatch)


@pytest.fixture
def window(sim: SimulatorHandle) -> tuple[datetime, datetime]:
    return past_window(sim, 30)


def sensor(window: tuple[datetime, datetime], **kwargs: Any) -> CentralMonitoringLogsSensor:
    start, end = window
    options = {"task_id": "wait", "application": "atr", "start": start, "end": end, **kwargs}
    return CentralMonitoringLogsSensor(**options)


def test_a_poke_is_done_once_min_records_are_seen_and_stops_scrolling(
    sim: SimulatorHandle, window: tuple[datetime, datetime]
) -> None:
    in_window = len(sim.records_between(*window, "atr"))

    result = sensor(window, min_records=25, page_size=10).poke(make_context())

    assert result.is_done
    assert result.xcom_value["records_seen"] == 25
    assert result.xcom_value["search"]["stopped_at_limit"] is True
    # The scroll reaches back to the window's start less the 5 minute margin (about 50
    # records before the window), then stops at the page holding the 25th record: far
    # fewer pages than the window's records fill.
    assert calls(sim, SCROLL) * 10 < in_window / 2


def test_a_poke_with_too_few_records_is_not_done_and_logs_the_quota_left(
    sim: SimulatorHandle, window: tuple[datetime, datetime], logs: Callable[[], str]
) -> None:
    task = sensor(window, filters={"level": "ERROR"}, min_records=10_000)

    result = task.poke(make_context())

    assert not result.is_done
    seen = len(sim.records_between(*window, "atr", level="ERROR"))
    assert f"Poke 1: {seen} of 10000 records seen" in logs()
    assert "calls left today on /v2/logs/scroll: 99" in logs()


def test_pokes_every_5_minutes_by_default(window: tuple[datetime, datetime]) -> None:
    task = sensor(window, exponential_backoff=True, max_wait=3600)

    assert task.poke_interval == 300
    assert task.exponential_backoff is True


def test_the_quota_floor_stops_the_sensor_before_a_scroll(
    sim: SimulatorHandle, window: tuple[datetime, datetime]
) -> None:
    task = sensor(window, min_records=10_000, min_daily_remaining=100)
    task.poke(make_context())

    with pytest.raises(QuotaFloorError, match="min_daily_remaining=100"):
        task.poke(make_context())

    assert sim.state.quotas.remaining(sim.client_id, SCROLL) == 99


def test_an_exhausted_quota_fails_the_poke(
    sim: SimulatorHandle, window: tuple[datetime, datetime]
) -> None:
    sim.set_faults(f"{SCROLL}=rate_limit")

    with pytest.raises(QuotaExhaustedError):
        sensor(window).poke(make_context())


def test_when_the_first_poke_succeeds_the_sensor_does_not_defer(
    sim: SimulatorHandle, window: tuple[datetime, datetime]
) -> None:
    result = sensor(window, deferrable=True).execute(make_context())

    assert result["records_seen"] == 1
    assert result["window"] == {
        "start": window[0].isoformat().replace("+00:00", "Z"),
        "end": window[1].isoformat().replace("+00:00", "Z"),
    }


def test_otherwise_it_defers_to_a_trigger_carrying_the_rendered_search(
    sim: SimulatorHandle, window: tuple[datetime, datetime], monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = record_secrets(sim, monkeypatch)
    task = sensor(
        window,
        deferrable=True,
        filters={"level": "{{ params.level }}"},
        min_records=10_000,
        timeout=600,
        min_daily_remaining=5,
        exponential_backoff=True,
    )
    task.render_template_fields({"params": {"level": "ERROR"}})

    with pytest.raises(TaskDeferred) as deferred:
        task.execute(make_context())

    trigger = deferred.value.trigger
    assert isinstance(trigger, CentralMonitoringLogsTrigger)
    _, kwargs = trigger.serialize()
    assert kwargs["query"]["filters"] == {"level": "ERROR"}
    assert kwargs["window"] == {"start": window[0].isoformat(), "end": window[1].isoformat()}
    assert kwargs["min_records"] == 10_000
    assert kwargs["polls_done"] == 1
    assert kwargs["daily_remaining"] == 99
    assert kwargs["min_daily_remaining"] == 5
    assert kwargs["poll_interval"] == 300
    assert kwargs["exponential_backoff"] is True
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert deferred.value.method_name == "execute_complete"
    assert leaked(secrets, kwargs) == []


@pytest.mark.parametrize(
    ("event", "error", "message"),
    [
        ({"status": "timeout", "message": "fewer than 3"}, AirflowSensorTimeout, "fewer than 3"),
        (
            {
                "status": "error",
                "error_type": "QuotaFloorError",
                "message": "floor",
                "remaining": 1,
            },
            QuotaFloorError,
            "floor",
        ),
        ({"status": "error", "error_type": "ServiceError", "message": "502"}, ServiceError, "502"),
        ({"status": "failed"}, ProtocolError, "unknown trigger event"),
        ("nonsense", ProtocolError, "unknown trigger event"),
    ],
)
def test_every_trigger_outcome_is_handled(
    window: tuple[datetime, datetime], event: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        sensor(window).execute_complete(make_context(), event=event)


def test_a_success_event_returns_what_was_seen(
    sim: SimulatorHandle, window: tuple[datetime, datetime]
) -> None:
    event = {"status": "success", "records_seen": 3, "polls": 4, "daily_remaining": 90}

    result = sensor(window, min_records=3).execute_complete(make_context(), event=event)

    assert result["records_seen"] == 3
    assert result["search"] == {"polls": 4, "daily_remaining": 90}


def test_a_floor_error_event_keeps_its_fields(window: tuple[datetime, datetime]) -> None:
    event = {
        "status": "error",
        "error_type": "QuotaFloorError",
        "message": "m",
        "remaining": 1,
        "resets_at": "2026-12-02T00:00:00+00:00",
    }

    with pytest.raises(QuotaFloorError) as raised:
        sensor(window).execute_complete(make_context(), event=event)

    assert raised.value.remaining == 1
    assert raised.value.resets_at is not None
    assert raised.value.resets_at.isoformat() == "2026-12-02T00:00:00+00:00"


@pytest.mark.parametrize(
    ("option", "value"), [("min_records", 0), ("deferrable", "no"), ("max_consecutive_failures", 0)]
)
def test_parameters_are_checked_when_the_dag_is_parsed(
    window: tuple[datetime, datetime], option: str, value: Any
) -> None:
    with pytest.raises(InvalidParameterError, match=option):
        sensor(window, **{option: value})


def test_window_parameters_come_from_the_search_mixin() -> None:
    with pytest.raises(InvalidParameterError, match="is after end"):
        CentralMonitoringLogsSensor(
            task_id="wait",
            application="atr",
            start="2026-12-02T00:00:00Z",
            end="2026-12-01T00:00:00Z",
        )
    assert "filters" in CentralMonitoringLogsSensor.template_fields


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"poke_interval": 0}, "poke_interval must be more than 0"),
        ({"poke_interval": timedelta(0)}, "poke_interval must be more than 0"),
        ({"poke_interval": 10**12}, "poke_interval must be at most"),
        ({"exponential_backoff": True, "max_wait": 0}, "max_wait must be more than 0"),
        ({"exponential_backoff": True, "max_wait": 10**12}, "max_wait must be at most"),
    ],
)
@pytest.mark.parametrize("deferrable", [True, False])
def test_intervals_no_poll_could_keep_are_refused_when_the_dag_is_parsed(
    window: tuple[datetime, datetime], options: dict[str, Any], message: str, deferrable: bool
) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        sensor(window, deferrable=deferrable, **options)
