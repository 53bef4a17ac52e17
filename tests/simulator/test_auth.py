from __future__ import annotations

import base64
from datetime import timedelta

import jwt
import pytest
import requests

from airflow_provider_centralmon.simulator.settings import DEFAULT_SCOPE, ClientConfig

from ._support import Api

SEARCH = {"application": "atr", "time_range": "now-5m"}


def _token_request(simulator, data, auth=None, **kwargs):
    return requests.post(simulator.auth_url, data=data, auth=auth, timeout=10, **kwargs)


def _credentials(simulator):
    return {
        "grant_type": "client_credentials",
        "client_id": simulator.client_id,
        "client_secret": simulator.client_secret,
    }


def test_token_granted_with_credentials_in_body(centralmon_simulator):
    reply = _token_request(centralmon_simulator, _credentials(centralmon_simulator))

    assert reply.status_code == 200
    body = reply.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert set(body) == {"access_token", "expires_in", "token_type"}


def test_token_granted_with_http_basic(centralmon_simulator):
    sim = centralmon_simulator

    reply = _token_request(
        sim, {"grant_type": "client_credentials"}, auth=(sim.client_id, sim.client_secret)
    )

    assert reply.status_code == 200
    assert reply.json()["token_type"] == "Bearer"


def test_jwt_claims_follow_the_simulator_clock(centralmon_simulator):
    sim = centralmon_simulator
    issued_at = int(sim.clock.now().timestamp())

    token = _token_request(sim, _credentials(sim)).json()["access_token"]

    claims = jwt.decode(token, options={"verify_signature": False})
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    assert claims["client_id"] == sim.client_id
    assert claims["scope"] == DEFAULT_SCOPE
    assert claims["iat"] == issued_at
    assert claims["exp"] == issued_at + 3600


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"client_secret": "wrong"}, 400, "invalid_client"),
        ({"client_id": "nobody"}, 400, "invalid_client"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({"grant_type": ""}, 400, "invalid_request"),
        ({"scope": "central-monitoring-external-api-prod/write"}, 400, "invalid_scope"),
    ],
)
def test_token_errors_follow_rfc_6749(centralmon_simulator, change, status, error):
    data = {**_credentials(centralmon_simulator), **change}

    reply = _token_request(centralmon_simulator, data)

    assert (reply.status_code, reply.json()) == (status, {"error": error})
    assert centralmon_simulator.counters()["tokens_issued"] == 0


def test_wrong_basic_credentials_answer_401(centralmon_simulator):
    sim = centralmon_simulator

    reply = _token_request(sim, {"grant_type": "client_credentials"}, auth=(sim.client_id, "x"))

    assert (reply.status_code, reply.json()) == (401, {"error": "invalid_client"})


def test_malformed_basic_header_answers_invalid_client(centralmon_simulator):
    reply = _token_request(
        centralmon_simulator,
        {"grant_type": "client_credentials"},
        headers={"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
    )

    assert (reply.status_code, reply.json()) == (401, {"error": "invalid_client"})


def test_token_request_must_be_form_encoded(centralmon_simulator):
    reply = requests.post(
        centralmon_simulator.auth_url, json=_credentials(centralmon_simulator), timeout=10
    )

    assert (reply.status_code, reply.json()) == (400, {"error": "invalid_request"})


def test_client_without_the_grant_is_unauthorized(centralmon_simulator_factory):
    client = ClientConfig(client_id="c", client_secret="s", allow_client_credentials=False)
    sim = centralmon_simulator_factory(clients=(client,))

    reply = _token_request(
        sim, {"grant_type": "client_credentials", "client_id": "c", "client_secret": "s"}
    )

    assert (reply.status_code, reply.json()) == (400, {"error": "unauthorized_client"})


def test_configured_lifetime_is_reported(centralmon_simulator_factory):
    sim = centralmon_simulator_factory(token_lifetime_s=60)

    assert _token_request(sim, _credentials(sim)).json()["expires_in"] == 60


def test_missing_token_answers_401(centralmon_simulator):
    reply = requests.post(centralmon_simulator.base_url + "/v1/logs/scroll", json=SEARCH)

    assert reply.status_code == 401
    assert reply.json()["status_code"] == 401
    assert reply.json()["detail"]


def test_expired_token_answers_401(api):
    api.simulator.clock.advance(timedelta(seconds=3599))
    assert api.post("/v1/logs/scroll", SEARCH).status_code == 200

    api.simulator.clock.advance(timedelta(seconds=1))
    reply = api.post("/v1/logs/scroll", SEARCH)

    assert reply.status_code == 401
    assert "expired" in reply.json()["detail"]


def test_forged_token_answers_401(api):
    claims = jwt.decode(api.token, options={"verify_signature": False})
    api.token = jwt.encode(claims, b"some other key of 32 bytes length", algorithm="HS256")

    reply = api.post("/v1/logs/scroll", SEARCH)

    assert (reply.status_code, reply.json()["status_code"]) == (401, 401)


def test_token_of_another_simulator_is_refused(api, centralmon_simulator_factory):
    other = Api(centralmon_simulator_factory())
    api.token = other.token

    assert api.post("/v1/logs/scroll", SEARCH).status_code == 401


def test_route_not_granted_answers_403(centralmon_simulator_factory):
    client = ClientConfig(
        client_id="centralmon-sim-client",
        client_secret="centralmon-sim-secret",
        routes=frozenset({"/v1/logs/scroll"}),
    )
    api = Api(centralmon_simulator_factory(clients=(client,)))

    assert api.post("/v1/logs/scroll", SEARCH).status_code == 200
    reply = api.post("/v1/logs/batch", SEARCH)

    assert reply.status_code == 403
    assert "/v1/logs/batch" in reply.json()["detail"]


def test_token_without_required_scope_answers_403(centralmon_simulator_factory):
    client = ClientConfig(
        client_id="centralmon-sim-client",
        client_secret="centralmon-sim-secret",
        scopes=(DEFAULT_SCOPE, "other/scope"),
    )
    sim = centralmon_simulator_factory(clients=(client,))
    data = {**_credentials(sim), "scope": "other/scope"}
    api = Api(sim)
    api.token = _token_request(sim, data).json()["access_token"]

    reply = api.post("/v1/logs/scroll", SEARCH)

    assert reply.status_code == 403
    assert DEFAULT_SCOPE in reply.json()["detail"]
