"""The quota readings a process keeps between tasks, and the floor checked against them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from airflow_provider_centralmon._quota_memory import (
    check_quota_floor,
    forget_quotas,
    last_known_quota,
    remember_quota,
)
from airflow_provider_centralmon.exceptions import QuotaFloorError
from airflow_provider_centralmon.hooks.centralmon import CentralMonitoringHook
from airflow_provider_centralmon.simulator.handle import SimulatorHandle

SCROLL = "/v2/logs/scroll"


def spend_one_scroll(sim: SimulatorHandle, conn_id: str = "centralmon_default") -> None:
    hook = CentralMonitoringHook(conn_id, clock=lambda: sim.now().timestamp())
    with hook:
        list(hook.scroll({"application": "atr", "time_range": "now-1m"}))
        remember_quota(hook)


def fresh_hook(sim: SimulatorHandle, conn_id: str = "centralmon_default") -> CentralMonitoringHook:
    return CentralMonitoringHook(conn_id, clock=lambda: sim.now().timestamp())


def test_a_reading_is_seen_by_later_hooks_of_the_process(sim: SimulatorHandle) -> None:
    spend_one_scroll(sim)

    status = last_known_quota(fresh_hook(sim), "scroll", sim.now())

    assert status is not None
    assert (status.route, status.remaining) == (SCROLL, 99)
    assert last_known_quota(fresh_hook(sim), "query", sim.now()) is None


def test_readings_are_shared_by_connections_of_the_same_client(
    sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim.use_as_connection(monkeypatch, conn_id="other_conn")
    spend_one_scroll(sim, "other_conn")

    status = last_known_quota(fresh_hook(sim), "scroll", sim.now())

    assert status is not None
    assert status.remaining == 99


def test_a_reading_from_before_the_daily_reset_is_ignored(sim: SimulatorHandle) -> None:
    spend_one_scroll(sim)
    midnight = datetime.combine(sim.now().date() + timedelta(days=1), datetime.min.time(), UTC)

    assert last_known_quota(fresh_hook(sim), "scroll", midnight - timedelta(seconds=1))
    assert last_known_quota(fresh_hook(sim), "scroll", midnight) is None


def test_the_newest_reading_wins(sim: SimulatorHandle) -> None:
    spend_one_scroll(sim)
    hook = fresh_hook(sim)
    with hook:
        sim.clock.advance(60)
        list(hook.scroll({"application": "atr", "time_range": "now-1m"}))

    status = last_known_quota(hook, "scroll", sim.now())

    assert status is not None
    assert status.remaining == 98


def test_forget_quotas_forgets(sim: SimulatorHandle) -> None:
    spend_one_scroll(sim)

    forget_quotas()

    assert last_known_quota(fresh_hook(sim), "scroll", sim.now()) is None


def test_the_floor_compares_with_the_reading(sim: SimulatorHandle) -> None:
    spend_one_scroll(sim)
    hook = fresh_hook(sim)

    check_quota_floor(hook, "scroll", None, sim.now())
    check_quota_floor(hook, "scroll", 99, sim.now())
    check_quota_floor(hook, "query", 1000, sim.now())
    with pytest.raises(QuotaFloorError, match="had 99 calls left today"):
        check_quota_floor(hook, "scroll", 100, sim.now())
