from __future__ import annotations

from datetime import timedelta

import pytest
import requests

from airflow_provider_centralmon._compat import BaseHook
from airflow_provider_centralmon.simulator.clock import ManualClock
from airflow_provider_centralmon.simulator.handle import SimulatorHandle
from airflow_provider_centralmon.simulator.settings import SimulatorSettings


def _assert_points_at(connection, simulator):
    assert connection.conn_type == "centralmon"
    assert connection.host == simulator.base_url
    assert connection.login == simulator.client_id
    assert connection.password == simulator.client_secret
    assert connection.extra_dejson["auth_url"] == simulator.auth_url
    assert connection.extra_dejson["scope"] == "x/read"


def test_use_as_connection_sets_the_json_form(centralmon_simulator, monkeypatch):
    conn_id = centralmon_simulator.use_as_connection(monkeypatch, "sim_json", scope="x/read")

    _assert_points_at(BaseHook.get_connection(conn_id), centralmon_simulator)


def test_connection_uri_keeps_the_http_host(centralmon_simulator, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SIM_URI", centralmon_simulator.connection_uri(scope="x/read"))

    _assert_points_at(BaseHook.get_connection("sim_uri"), centralmon_simulator)


def test_fixture_resets_the_shared_simulator(centralmon_simulator):
    clock = centralmon_simulator.clock
    assert isinstance(clock, ManualClock)
    assert clock.now() == clock.start
    assert centralmon_simulator.counters()["token_requests"] == 0
    clock.advance(timedelta(hours=1))
    centralmon_simulator.access_token()


def test_fixture_reset_undid_the_previous_test(centralmon_simulator):
    assert centralmon_simulator.clock.now() == centralmon_simulator.clock.start


def test_repr_hides_credentials(centralmon_simulator):
    text = repr(centralmon_simulator) + repr(centralmon_simulator.settings.clients)

    assert centralmon_simulator.client_secret not in text


def test_handle_as_context_manager_stops_the_server():
    import requests

    with SimulatorHandle(settings=SimulatorSettings(records_per_minute=1)) as simulator:
        assert requests.get(simulator.base_url + "/_admin/counters", timeout=5).ok

    with pytest.raises(requests.ConnectionError):
        requests.get(simulator.base_url + "/_admin/counters", timeout=5)


def test_records_between_is_half_open(centralmon_simulator):
    sim = centralmon_simulator
    hits = sim.records_between(sim.now() - timedelta(minutes=30), sim.now(), "atr")
    middle = hits[len(hits) // 2]["_source"]["@timestamp"]
    from datetime import datetime

    cut = datetime.fromisoformat(middle)

    before = sim.records_between(sim.now() - timedelta(minutes=30), cut, "atr")
    after = sim.records_between(cut, sim.now(), "atr")

    assert before + after == hits
    assert after[0]["_source"]["@timestamp"] == middle


def test_hits_between_applies_the_body_filters(centralmon_simulator):
    sim = centralmon_simulator
    start, end = sim.now() - timedelta(hours=2), sim.now() - timedelta(hours=1)
    body = {"application": "eventops", "tenant": "tenant-a", "filters": {"level": "WARN"}}

    hits = sim.hits_between(body, start, end)

    everything = sim.records_between(start, end, "eventops")
    assert hits == [
        hit
        for hit in everything
        if (hit["_source"]["tenant"], hit["_source"]["level"]) == ("tenant-a", "WARN")
    ]
    assert hits


def test_expected_ids_match_expected_hits(centralmon_simulator):
    body = {"application": "quasar", "time_range": "now-1h", "filters": {"level": "INFO"}}

    expected = centralmon_simulator.expected_ids(body)

    assert expected == [hit["_id"] for hit in centralmon_simulator.expected_hits(body)]
    assert expected


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.1", "example.com"])
def test_a_handle_never_listens_off_loopback(host):
    with pytest.raises(ValueError, match="is not a loopback address"):
        SimulatorHandle(host=host)


@pytest.mark.parametrize(
    "change", [{"advance_s": 1e12}, {"advance_s": "inf"}, {"set": "2026-12-01"}]
)
def test_a_clock_change_out_of_range_is_refused(centralmon_simulator, change):
    before = centralmon_simulator.now()

    reply = requests.post(centralmon_simulator.base_url + "/_admin/clock", json=change, timeout=10)

    assert reply.status_code == 400
    assert "Invalid clock change" in reply.json()["detail"]
    assert centralmon_simulator.now() == before


def test_a_deeply_nested_body_is_a_bad_request(api):
    nested = b'{"application": "atr", "time_range": "now-1m", "x": ' + b"[" * 50_000
    body = nested + b"]" * 50_000 + b"}"

    reply = api.session.post(
        api.simulator.base_url + "/v2/logs/scroll",
        data=body,
        headers={"Authorization": f"Bearer {api.token}", "Content-Type": "application/json"},
        timeout=10,
    )

    assert (reply.status_code, reply.json()["detail"]) == (400, "Request body is not valid JSON")
