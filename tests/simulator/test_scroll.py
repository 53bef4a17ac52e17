from __future__ import annotations

from datetime import timedelta

import pytest

from airflow_provider_centralmon.simulator.settings import DEFAULT_CLIENT, ClientConfig

from ._support import Api, ids

BODY = {"application": "atr", "time_range": "now-2h", "size": 250}


def test_pages_cover_the_ground_truth_without_gaps_or_duplicates(api):
    pages = api.scroll_all(BODY)

    hits = [hit for page in pages for hit in page.json()["logs"]]
    assert len(pages) > 3
    assert ids(hits) == ids(api.simulator.expected_hits(BODY))
    assert [len(page.json()["logs"]) for page in pages[:-1]] == [250] * (len(pages) - 1)
    assert not pages[-1].json()["has_more"]


def test_every_page_has_a_new_scroll_id(api):
    pages = api.scroll_all(BODY)

    scroll_ids = [page.json()["scroll_id"] for page in pages]
    assert len(set(scroll_ids)) == len(scroll_ids)


def test_v2_scroll_pages_the_same_records(api):
    pages = api.scroll_all(BODY, route="/v2/logs/scroll")

    hits = [hit for page in pages for hit in page.json()["data"]["logs"]]
    assert ids(hits) == ids(api.simulator.expected_hits(BODY))


def test_default_page_size(centralmon_simulator_factory):
    api = Api(centralmon_simulator_factory(default_page_size=7))

    reply = api.post("/v1/logs/scroll", {"application": "atr", "time_range": "now-1h"})

    assert len(reply.json()["logs"]) == 7


def test_window_is_fixed_by_the_first_call(api):
    first = api.post("/v1/logs/scroll", BODY)
    api.simulator.clock.advance(timedelta(minutes=-90))

    rest = [first]
    while rest[-1].json()["has_more"]:
        rest.append(api.post("/v1/logs/scroll", {"scroll_id": rest[-1].json()["scroll_id"]}))

    api.simulator.clock.rewind()
    hits = [hit for page in rest for hit in page.json()["logs"]]
    assert ids(hits) == ids(api.simulator.expected_hits(BODY))


def test_old_scroll_id_is_refused(api):
    first = api.post("/v1/logs/scroll", BODY)
    api.post("/v1/logs/scroll", {"scroll_id": first.json()["scroll_id"]})

    reply = api.post("/v1/logs/scroll", {"scroll_id": first.json()["scroll_id"]})

    assert reply.status_code == 404
    assert reply.json()["status_code"] == 404


def test_another_clients_scroll_id_is_refused_and_the_cursor_lives_on(
    centralmon_simulator_factory,
):
    other = ClientConfig(client_id="other", client_secret="other-secret")
    sim = centralmon_simulator_factory(clients=(DEFAULT_CLIENT, other))
    owner = Api(sim)
    sim.client_id, sim.client_secret = "other", "other-secret"
    intruder = Api(sim)
    first = owner.post("/v1/logs/scroll", BODY).json()

    stolen = intruder.post("/v1/logs/scroll", {"scroll_id": first["scroll_id"]})
    continued = owner.post("/v1/logs/scroll", {"scroll_id": first["scroll_id"]})

    assert stolen.status_code == 404
    assert continued.status_code == 200
    assert continued.json()["logs"][0]["_id"] != first["logs"][0]["_id"]


def test_idle_cursor_expires(api):
    first = api.post("/v1/logs/scroll", BODY)
    api.simulator.clock.advance(timedelta(seconds=301))

    reply = api.post("/v1/logs/scroll", {"scroll_id": first.json()["scroll_id"]})

    assert reply.status_code == 404
    assert "expired" in reply.json()["detail"]


def test_cursor_used_within_the_timeout_lives_on(api):
    page = api.post("/v1/logs/scroll", BODY)
    for _ in range(3):
        api.simulator.clock.advance(timedelta(seconds=299))
        page = api.post("/v1/logs/scroll", {"scroll_id": page.json()["scroll_id"]})
        assert page.status_code == 200


def test_expired_cursor_status_is_configurable(centralmon_simulator_factory):
    sim = centralmon_simulator_factory(scroll_expired_status=400, scroll_idle_timeout_s=5)
    api = Api(sim)
    first = api.post("/v1/logs/scroll", BODY)
    sim.clock.advance(6)

    reply = api.post("/v1/logs/scroll", {"scroll_id": first.json()["scroll_id"]})

    assert (reply.status_code, reply.json()["status_code"]) == (400, 400)


def test_unwrapped_records(centralmon_simulator_factory):
    sim = centralmon_simulator_factory(unwrap_scroll_hits=True)

    logs = Api(sim).post("/v1/logs/scroll", BODY).json()["logs"]

    assert "_source" not in logs[0]
    assert [log["trace_id"] for log in logs] == [
        hit["_source"]["trace_id"] for hit in sim.expected_hits(BODY)[:250]
    ]


@pytest.mark.parametrize("scroll_id", [7, None])
def test_scroll_id_must_be_a_string(api, scroll_id):
    assert api.post("/v1/logs/scroll", {"scroll_id": scroll_id}).status_code == 400
