from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ._support import Api

SEARCH = {"application": "atr", "time_range": "now-1m"}
OVER_QUOTA = {"statusCode": 429, "body": {"error": "Rate limit exceeded"}}


def test_each_reply_reports_the_remaining_quota(api):
    remaining = [
        api.post("/v1/logs/scroll", SEARCH).json()["daily_requests_remaining"] for _ in range(3)
    ]

    assert remaining == [499, 498, 497]


def test_quotas_are_counted_per_route(api):
    api.post("/v1/logs/scroll", SEARCH)

    batch = api.post("/v1/logs/batch", SEARCH).json()
    query = api.post("/v1/query", {"domain_name": "acme-prod", "time_range": "now-1m"}).json()

    assert batch["daily_requests_remaining"] == 49
    assert query["daily_requests_remaining"] == 499


def test_used_up_quota_answers_429_until_midnight_utc(centralmon_simulator_factory):
    start = datetime(2026, 12, 3, 23, 58, tzinfo=UTC)
    from airflow_provider_centralmon.simulator.clock import ManualClock

    clock = ManualClock(start=start)
    sim = centralmon_simulator_factory(clock=clock, quotas={"/v1/logs/scroll": 2})
    api = Api(sim)
    assert [api.post("/v1/logs/scroll", SEARCH).status_code for _ in range(2)] == [200, 200]

    refused = api.post("/v1/logs/scroll", SEARCH)
    clock.advance(timedelta(seconds=119))
    still_refused = api.post("/v1/logs/scroll", SEARCH)
    clock.advance(timedelta(seconds=1))
    after_midnight = api.post("/v1/logs/scroll", SEARCH)

    assert (refused.status_code, refused.json()) == (429, OVER_QUOTA)
    assert still_refused.status_code == 429
    assert after_midnight.status_code == 200
    assert after_midnight.json()["daily_requests_remaining"] == 1


def test_scroll_continuation_is_free_by_default(centralmon_simulator_factory):
    api = Api(centralmon_simulator_factory(quotas={"/v1/logs/scroll": 1}))
    first = api.post("/v1/logs/scroll", {**SEARCH, "time_range": "now-1h", "size": 100})

    second = api.post("/v1/logs/scroll", {"scroll_id": first.json()["scroll_id"]})

    assert second.status_code == 200
    assert second.json()["daily_requests_remaining"] == 0


def test_scroll_continuation_can_cost_quota(centralmon_simulator_factory):
    sim = centralmon_simulator_factory(scroll_continuation_costs_quota=True)
    api = Api(sim)
    first = api.post("/v1/logs/scroll", {**SEARCH, "time_range": "now-1h", "size": 100})

    second = api.post("/v1/logs/scroll", {"scroll_id": first.json()["scroll_id"]})

    assert second.json()["daily_requests_remaining"] == 498


def test_v2_routes_default_to_100_a_day(api):
    reply = api.post("/v2/logs/batch", SEARCH)

    assert reply.json()["meta"]["rate_limit"]["daily_remaining"] == 99


def test_quotas_are_per_client(centralmon_simulator_factory):
    from airflow_provider_centralmon.simulator.settings import DEFAULT_CLIENT, ClientConfig

    other = ClientConfig(client_id="other", client_secret="other-secret")
    sim = centralmon_simulator_factory(
        clients=(DEFAULT_CLIENT, other), quotas={"/v1/logs/scroll": 1}
    )
    first = Api(sim)
    first.post("/v1/logs/scroll", SEARCH)
    sim.client_id, sim.client_secret = "other", "other-secret"
    second = Api(sim)

    assert first.post("/v1/logs/scroll", SEARCH).status_code == 429
    assert second.post("/v1/logs/scroll", SEARCH).status_code == 200


def test_reset_restores_quotas(api):
    api.post("/v1/logs/scroll", SEARCH)

    api.simulator.reset()

    assert api.post("/v1/logs/scroll", SEARCH).json()["daily_requests_remaining"] == 499
