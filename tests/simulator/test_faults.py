from __future__ import annotations

import json

import pytest
import requests

from airflow_provider_centralmon.simulator.faults import FaultRule

from ._support import Api

SEARCH = {"application": "atr", "time_range": "now-10m"}


@pytest.mark.parametrize("status", [500, 502, 503])
def test_error_fault_answers_an_html_gateway_page(api, status):
    api.simulator.set_faults(FaultRule(kind="error", route="/v1/logs/scroll", status=status))

    reply = api.post("/v1/logs/scroll", SEARCH)

    assert reply.status_code == status
    assert reply.headers["content-type"].startswith("text/html")
    assert f"<title>{status}" in reply.text


def test_rate_limit_fault_answers_the_quota_body(api):
    api.simulator.set_faults("/v1/logs/scroll=rate_limit")

    reply = api.post("/v1/logs/scroll", SEARCH)

    assert (reply.status_code, reply.json()) == (
        429,
        {"statusCode": 429, "body": {"error": "Rate limit exceeded"}},
    )


def test_count_limits_a_fault_to_the_next_calls(api):
    api.simulator.set_faults("/v1/logs/scroll=error,status=502,count=2")

    statuses = [api.post("/v1/logs/scroll", SEARCH).status_code for _ in range(4)]

    assert statuses == [502, 502, 200, 200]
    assert api.simulator.counters()["faults_injected"] == 2


def test_spent_faults_leave_the_active_list(api):
    base = api.simulator.base_url
    api.simulator.set_faults(
        "/v1/logs/scroll=error,status=502,count=1", "/v1/query=latency,latency_s=0.01"
    )

    api.post("/v1/logs/scroll", SEARCH)
    active = requests.get(base + "/_admin/faults", timeout=10).json()["faults"]

    assert [(rule["route"], rule["kind"]) for rule in active] == [("/v1/query", "latency")]


@pytest.mark.parametrize(
    "rule",
    [
        {"kind": "error", "route": 5},
        {"kind": "latency", "latency_s": "1"},
        {"kind": "error", "count": 1.5},
        {"kind": "latency", "latency_s": 1e9},
        {"kind": "nope"},
    ],
)
def test_a_fault_of_the_wrong_shape_is_refused_and_nothing_changes(api, rule):
    base = api.simulator.base_url

    reply = requests.post(base + "/_admin/faults", json={"faults": [rule]}, timeout=10)

    assert reply.status_code == 400
    assert "Invalid fault specification" in reply.json()["detail"]
    assert requests.get(base + "/_admin/faults", timeout=10).json() == {"faults": []}
    assert api.post("/v1/logs/scroll", SEARCH).status_code == 200


def test_fault_applies_only_to_its_route(api):
    api.simulator.set_faults("/v1/logs/batch=error")

    assert api.post("/v1/logs/scroll", SEARCH).status_code == 200
    assert api.post("/v1/logs/batch", SEARCH).status_code == 503


def test_random_faults_repeat_with_the_seed(centralmon_simulator_factory):
    def run() -> list[int]:
        sim = centralmon_simulator_factory(faults=(FaultRule(kind="error", rate=0.5),))
        api = Api.__new__(Api)
        api.simulator, api.session, api.token = sim, requests.Session(), sim.access_token()
        return [api.post("/v1/logs/scroll", SEARCH).status_code for _ in range(12)]

    first, second = run(), run()

    assert first == second
    assert {200, 503} == set(first)


def test_latency_fault_delays_the_reply(api):
    api.simulator.set_faults("/v1/logs/scroll=latency,latency_s=1.0")

    with pytest.raises(requests.Timeout):
        api.post("/v1/logs/scroll", SEARCH, timeout=0.2)


def test_drop_fault_breaks_the_connection_midway(api):
    api.simulator.set_faults("/v1/logs/scroll=drop,count=1")

    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        api.post("/v1/logs/scroll", SEARCH)
    assert api.post("/v1/logs/scroll", SEARCH).status_code == 200


def test_truncate_fault_sends_incomplete_json(api):
    api.simulator.set_faults("/v1/logs/scroll=truncate")

    reply = api.post("/v1/logs/scroll", SEARCH)

    assert reply.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(reply.content)


def test_token_revocation_invalidates_earlier_tokens_only(api):
    api.simulator.revoke_tokens()

    refused = api.post("/v1/logs/scroll", SEARCH)
    fresh = Api(api.simulator)

    assert (refused.status_code, refused.json()["detail"]) == (401, "Access token revoked")
    assert fresh.post("/v1/logs/scroll", SEARCH).status_code == 200


def test_token_endpoint_and_files_take_faults(api):
    sim = api.simulator
    token = api.post("/v1/logs/batch", SEARCH).json()["token"]
    url = api.post("/v1/logs/batch/urls", {"token": token}).json()["presigned_urls"][0]
    sim.set_faults("/oauth2/token=error,status=500", "/_s3/*=error,status=503")

    token_reply = requests.post(sim.auth_url, data={"grant_type": "client_credentials"})
    file_reply = requests.get(url["presigned_url"], timeout=10)

    assert (token_reply.status_code, file_reply.status_code) == (500, 503)


def test_admin_routes_over_http(api):
    base = api.simulator.base_url
    set_reply = requests.post(
        base + "/_admin/faults",
        json={"faults": [{"kind": "error", "route": "/v1/query", "count": 1}]},
        timeout=10,
    )
    api.post("/v1/logs/scroll", SEARCH)
    failed = api.post("/v1/query", {"domain_name": "acme-prod", "time_range": "now-1h"})

    counters = requests.get(base + "/_admin/counters", timeout=10).json()
    requests.post(base + "/_admin/reset", timeout=10)
    after_reset = requests.get(base + "/_admin/counters", timeout=10).json()

    assert set_reply.json()["faults"][0]["count"] == 1
    assert failed.status_code == 503
    assert counters["token_requests"] == 1
    assert counters["routes"]["/v1/logs/scroll"]["calls"] == 1
    assert counters["routes"]["/v1/logs/scroll"]["records"] > 0
    assert counters["routes"]["/v1/logs/scroll"]["bytes"] > 1000
    assert counters["routes"]["/v1/query"]["calls"] == 1
    assert after_reset["routes"] == {}


def test_admin_revocation_and_bad_specs(api):
    base = api.simulator.base_url

    bad = requests.post(base + "/_admin/faults", json={"faults": [{"kind": "x"}]}, timeout=10)
    requests.post(base + "/_admin/faults", json={"revoke_tokens": True}, timeout=10)

    assert bad.status_code == 400
    assert api.post("/v1/logs/scroll", SEARCH).status_code == 401


def test_counters_record_records_and_bytes(api):
    reply = api.post("/v1/logs/scroll", {**SEARCH, "size": 50})

    routes = api.simulator.counters()["routes"]

    assert routes["/v1/logs/scroll"] == {
        "calls": 1,
        "records": len(reply.json()["logs"]),
        "bytes": len(reply.content),
    }


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("/x=boom", "unknown fault kind"),
        ("/x=error,status=404", "500, 502 or 503"),
        ("/x=error,rate=2", "between 0 and 1"),
        ("/x=error,colour=red", "unknown fault option"),
    ],
)
def test_bad_fault_specs_are_refused(spec, message):
    with pytest.raises(ValueError, match=message):
        FaultRule.from_spec(spec)


def test_reset_forgives_revocations(api):
    api.simulator.revoke_tokens()
    assert api.post("/v1/logs/scroll", SEARCH).status_code == 401

    api.simulator.reset()

    assert api.post("/v1/logs/scroll", SEARCH).status_code == 200
