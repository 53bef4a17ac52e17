from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from ._support import Api, ids, payload

BODY = {"application": "quasar", "time_range": "now-3h"}


def _submit(api, body=BODY, route="/v1/logs/batch"):
    reply = api.post(route, body)
    assert reply.status_code == 200
    return payload(reply)["token"]


def _entries(api, token, route="/v1/logs/batch/urls"):
    reply = api.post(route, {"token": token})
    assert reply.status_code == 200
    return payload(reply)["presigned_urls"]


def test_submission_replies_token_quota_and_echo(api):
    reply = api.post("/v1/logs/batch", BODY).json()

    assert isinstance(reply["token"], str)
    assert reply["daily_requests_remaining"] == 49
    assert reply["logs"] == [BODY]
    assert api.simulator.counters()["batch_submissions"] == 1


def test_ready_export_serves_the_ground_truth(api):
    token = _submit(api)

    entries = _entries(api, token)

    assert [(e["ready"], e["status"]) for e in entries] == [(True, "completed")]
    hits = requests.get(entries[0]["presigned_url"], timeout=10).json()
    assert ids(hits) == ids(api.simulator.expected_hits(BODY))
    first, last = entries[0]["time_range"].split("/")
    assert (first, last) == (hits[0]["_source"]["@timestamp"], hits[-1]["_source"]["@timestamp"])


@pytest.mark.parametrize("route", ["/v1/logs/batch/status", "/v2/logs/batch/urls"])
def test_status_alias_and_v2_answer_alike(api, route):
    token = _submit(api)

    entries = _entries(api, token, route)

    assert entries[0]["status"] == "completed"


def test_export_is_not_ready_before_the_delay(centralmon_simulator_factory):
    sim = centralmon_simulator_factory(batch_ready_delay_s=30)
    api = Api(sim)
    token = _submit(api)

    pending = _entries(api, token)
    sim.clock.advance(30)
    ready = _entries(api, token)

    assert pending == [
        {
            "presigned_url": None,
            "time_range": pending[0]["time_range"],
            "ready": False,
            "status": "processing",
        }
    ]
    assert ready[0]["ready"] is True
    assert ready[0]["presigned_url"].startswith(sim.base_url)


@pytest.mark.parametrize(
    ("shape", "check"),
    [
        ("absent_url", lambda entries: "presigned_url" not in entries[0]),
        ("no_entries", lambda entries: entries == []),
    ],
)
def test_not_ready_shape_is_configurable(centralmon_simulator_factory, shape, check):
    api = Api(centralmon_simulator_factory(batch_pending_polls=1, batch_pending_shape=shape))
    token = _submit(api)

    assert check(_entries(api, token))
    assert _entries(api, token)[0]["ready"] is True


def test_export_can_fail(centralmon_simulator_factory):
    api = Api(centralmon_simulator_factory(batch_fail=True))

    entries = _entries(api, _submit(api))

    assert [(e["status"], e["ready"], e["presigned_url"]) for e in entries] == [
        ("failed", False, None)
    ]


def test_files_hold_at_most_the_configured_records(centralmon_simulator_factory):
    sim = centralmon_simulator_factory(batch_records_per_file=500)
    api = Api(sim)

    entries = _entries(api, _submit(api))

    files = [requests.get(e["presigned_url"], timeout=10).json() for e in entries]
    expected = sim.expected_hits(BODY)
    assert len(entries) == -(-len(expected) // 500) > 1
    assert [len(f) for f in files[:-1]] == [500] * (len(files) - 1)
    assert ids([hit for f in files for hit in f]) == ids(expected)


def test_empty_export_lists_one_empty_file(api):
    body = {**BODY, "filters": {"level": "NO-SUCH-LEVEL"}}

    entries = _entries(api, _submit(api, body))

    assert requests.get(entries[0]["presigned_url"], timeout=10).json() == []


def test_every_request_gives_fresh_urls(api):
    token = _submit(api)

    first, second = _entries(api, token), _entries(api, token)

    assert first[0]["presigned_url"] != second[0]["presigned_url"]
    assert requests.get(second[0]["presigned_url"], timeout=10).status_code == 200


def test_url_carries_its_expiry(api):
    url = _entries(api, _submit(api))[0]["presigned_url"]

    query = parse_qs(urlsplit(url).query)

    expires_at = int(api.simulator.now().timestamp()) + 3600
    assert query["Expires"] == [str(expires_at)]
    assert query["X-Amz-Expires"] == ["3600"]


def test_expired_url_answers_403_in_s3_xml(api):
    url = _entries(api, _submit(api))[0]["presigned_url"]
    api.simulator.clock.advance(timedelta(seconds=3600))

    reply = requests.get(url, timeout=10)

    assert reply.status_code == 403
    assert "<Code>AccessDenied</Code>" in reply.text
    assert "expired" in reply.text


def test_authorization_header_answers_400_in_s3_xml(api):
    url = _entries(api, _submit(api))[0]["presigned_url"]

    reply = requests.get(url, headers={"Authorization": f"Bearer {api.token}"}, timeout=10)

    assert reply.status_code == 400
    assert "<Code>InvalidArgument</Code>" in reply.text
    assert "Only one auth mechanism allowed" in reply.text


def test_bad_signature_answers_403(api):
    url = _entries(api, _submit(api))[0]["presigned_url"]
    signature = parse_qs(urlsplit(url).query)["X-Amz-Signature"][0]

    reply = requests.get(url.replace(signature, "0" * len(signature)), timeout=10)

    assert reply.status_code == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in reply.text


def test_tampered_expiry_answers_403(api):
    url = _entries(api, _submit(api))[0]["presigned_url"]
    expires = parse_qs(urlsplit(url).query)["Expires"][0]

    reply = requests.get(url.replace(f"Expires={expires}", f"Expires={int(expires) + 1}"))

    assert reply.status_code == 403


def test_unknown_batch_token_answers_400(api):
    reply = api.post("/v1/logs/batch/urls", {"token": "not-a-token"})

    assert (reply.status_code, reply.json()["status_code"]) == (400, 400)


def test_batch_body_is_validated(api):
    reply = api.post("/v1/logs/batch", {"application": "atr"})

    assert reply.status_code == 400
    assert api.simulator.counters()["batch_submissions"] == 0
