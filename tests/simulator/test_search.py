from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from airflow_provider_centralmon.simulator.datemath import DateMathError, resolve_lower_bound

from ._support import ids

NOW = datetime(2026, 12, 3, 14, 37, 25, 123000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("now", NOW),
        ("now-15m", NOW - timedelta(minutes=15)),
        ("now-15m/m", datetime(2026, 12, 3, 14, 22, tzinfo=UTC)),
        ("now-2h", NOW - timedelta(hours=2)),
        ("now-1H/H", datetime(2026, 12, 3, 13, tzinfo=UTC)),
        ("now-1d/d", datetime(2026, 12, 2, tzinfo=UTC)),
        ("now/w", datetime(2026, 11, 30, tzinfo=UTC)),
        ("now-1M/M", datetime(2026, 11, 1, tzinfo=UTC)),
        ("now-1y/y", datetime(2025, 1, 1, tzinfo=UTC)),
        ("now-30s/s", datetime(2026, 12, 3, 14, 36, 55, tzinfo=UTC)),
        ("now+1d-3h", NOW + timedelta(hours=21)),
        ("2026-12-01T10:00:00Z||", datetime(2026, 12, 1, 10, tzinfo=UTC)),
        ("2026-12-01T10:30:00Z||-1h/h", datetime(2026, 12, 1, 9, tzinfo=UTC)),
        ("2026-03-31T00:00:00Z||-1M", datetime(2026, 2, 28, tzinfo=UTC)),
        ("2026-12-01T10:00:00+02:00", datetime(2026, 12, 1, 8, tzinfo=UTC)),
    ],
)
def test_date_math(expression, expected):
    assert resolve_lower_bound(expression, NOW) == expected


@pytest.mark.parametrize("expression", ["yesterday", "now-15x", "now-", "now-1d/q", "now-9999y"])
def test_bad_date_math_is_refused(expression):
    with pytest.raises(DateMathError):
        resolve_lower_bound(expression, NOW)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"time_range": "now-1h"}, "application"),
        ({"application": "nope", "time_range": "now-1h"}, "Invalid application"),
        ({"application": "atr"}, "time_range"),
        ({"application": "atr", "time_range": 15}, "time_range"),
        ({"application": "atr", "time_range": "last week"}, "time_range"),
        ({"application": "atr", "time_range": "now-1h", "size": "10"}, "size"),
        ({"application": "atr", "time_range": "now-1h", "size": True}, "size"),
        ({"application": "atr", "time_range": "now-1h", "size": 0}, "size"),
        ({"application": "atr", "time_range": "now-1h", "size": 10_001}, "size"),
        ({"application": "atr", "time_range": "now-1h", "filters": []}, "filters"),
        ({"application": "atr", "time_range": "now-1h", "filters": {"a": [1]}}, "Filter"),
        ({"application": "atr", "time_range": "now-1h", "tenant": "t"}, "eventops"),
        ({"application": "klewer", "time_range": "now-1h", "stage": "dev"}, "eventops"),
        ({"application": "atr", "time_range": "now-1h", "app_type": "vm"}, "app_type"),
        ({"application": "atr", "time_range": "now-1h", "domain": 3}, "domain"),
    ],
)
def test_invalid_search_answers_400(api, body, fragment):
    reply = api.post("/v1/logs/scroll", body)

    assert reply.status_code == 400
    assert reply.json()["status_code"] == 400
    assert fragment in reply.json()["detail"]


def test_body_that_is_not_json_answers_400(api):
    reply = api.post("/v1/logs/scroll", None, data=b"{not json")

    assert (reply.status_code, reply.json()["status_code"]) == (400, 400)


def test_validation_errors_spend_no_quota(api):
    api.post("/v1/logs/scroll", {"application": "nope", "time_range": "now-1h"})

    reply = api.post("/v1/logs/scroll", {"application": "atr", "time_range": "now-1m"})

    assert reply.json()["daily_requests_remaining"] == 499


def test_v1_reply_is_top_level_with_request_id_header(api):
    reply = api.post("/v1/logs/scroll", {"application": "atr", "time_range": "now-5m"})

    assert set(reply.json()) == {"logs", "scroll_id", "has_more", "daily_requests_remaining"}
    assert len(reply.headers["x-request-id"]) >= 16


def test_v2_reply_is_wrapped_with_meta(api):
    reply = api.post("/v2/logs/scroll", {"application": "atr", "time_range": "now-5m"})

    body = reply.json()
    assert set(body) == {"data", "meta"}
    assert set(body["data"]) == {"logs", "scroll_id", "has_more"}
    assert body["meta"]["api_version"] == "v2"
    assert body["meta"]["rate_limit"] == {"daily_remaining": 99}
    assert body["meta"]["request_id"] == reply.headers["x-request-id"]


def test_window_runs_from_date_math_to_now(api):
    sim = api.simulator
    body = {"application": "klewer", "time_range": "now-15m/m", "size": 10_000}

    hits = api.post("/v1/logs/scroll", body).json()["logs"]

    lower = (sim.now() - timedelta(minutes=15)).replace(second=0, microsecond=0)
    assert hits
    assert ids(hits) == ids(sim.records_between(lower, sim.now() + timedelta(1), "klewer"))
    assert all(hit["_source"]["application"] == "klewer" for hit in hits)


def test_absolute_anchor_is_accepted(api):
    sim = api.simulator
    anchor = (sim.now() - timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {"application": "atr", "time_range": f"{anchor}||-10m/m", "size": 10_000}

    hits = api.post("/v1/logs/scroll", body).json()["logs"]

    assert ids(hits) == ids(sim.expected_hits(body))
    assert len(hits) > 100


def test_records_after_now_are_not_visible(api):
    sim = api.simulator
    sim.clock.advance(timedelta(minutes=-30))
    body = {"application": "atr", "time_range": "now-1h", "size": 10_000}

    hits = api.post("/v1/logs/scroll", body).json()["logs"]

    newest = max(hit["_source"]["@timestamp"] for hit in hits)
    assert newest <= sim.now().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    assert ids(hits) == ids(sim.expected_hits(body))


def test_filters_match_exactly(api):
    # The filter values come from a record of the window, so the filtered search is never
    # empty whatever the session's clock.
    window = {"application": "eventops", "time_range": "now-3h", "size": 10_000}
    first = api.post("/v1/logs/scroll", window).json()["logs"][0]["_source"]
    wanted = {key: first[key] for key in ("domain", "app_type", "stage", "status", "service")}
    body = {
        **window,
        "domain": wanted["domain"],
        "app_type": wanted["app_type"],
        "stage": wanted["stage"],
        "filters": {"status": wanted["status"], "service": wanted["service"]},
    }

    hits = api.post("/v1/logs/scroll", body).json()["logs"]

    assert hits
    assert ids(hits) == ids(api.simulator.expected_hits(body))
    assert len(hits) < len(api.simulator.expected_hits(window))
    for hit in hits:
        assert {key: hit["_source"][key] for key in wanted} == wanted


def test_filter_on_a_field_outside_the_common_ones(api):
    every = api.post("/v1/logs/scroll", {"application": "atr", "time_range": "now-2m"})
    wanted = every.json()["logs"][0]["_source"]["trace_id"]
    body = {"application": "atr", "time_range": "now-2m", "filters": {"trace_id": wanted}}

    hits = api.post("/v1/logs/scroll", body).json()["logs"]

    assert [hit["_source"]["trace_id"] for hit in hits] == [wanted]


def test_records_are_opensearch_hits_sorted_by_time_then_id(api):
    body = {"application": "atr", "time_range": "now-6h", "size": 10_000}

    hits = api.post("/v1/logs/scroll", body).json()["logs"]

    assert {"_index", "_id", "_source"} <= set(hits[0])
    keys = [(hit["_source"]["@timestamp"], hit["_id"]) for hit in hits]
    assert keys == sorted(keys)
    assert all(len(hit["_source"]["@timestamp"]) == 24 for hit in hits)
    assert any(not hit["_source"]["message"].isascii() for hit in hits)
    sizes = [len(str(hit)) for hit in hits]
    assert min(sizes) < 1000 < 2500 < max(sizes)


@pytest.mark.parametrize("route", ["/v1/query", "/v2/query"])
def test_query_counts_tickets_of_a_domain(api, route):
    body = {"domain_name": "acme-prod", "time_range": "now-1d"}

    reply = api.post(route, body)

    payload = reply.json()["data"] if route.startswith("/v2") else reply.json()
    expected = api.simulator.expected_hits(
        {"application": "atr", "time_range": "now-1d", "domain": "acme-prod"}
    )
    assert payload["ticket_count"] == len(expected) > 0
    assert payload["domain_name"] == "acme-prod"


def test_query_needs_a_domain_name(api):
    reply = api.post("/v1/query", {"time_range": "now-1d"})

    assert reply.status_code == 400
    assert "domain_name" in reply.json()["detail"]
