"""The token endpoint, shaped like Cognito's ``/oauth2/token``."""

from __future__ import annotations

import uuid

import msgspec
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from airflow_provider_centralmon.simulator.auth import OAuthError
from airflow_provider_centralmon.simulator.pipeline import (
    JSON,
    apply_latency,
    damaged_reply,
    fault_reply,
    state_of,
)
from airflow_provider_centralmon.simulator.settings import TOKEN_PATH

router = APIRouter()
_FORM = "application/x-www-form-urlencoded"


@router.post(TOKEN_PATH)
async def token(request: Request) -> Response:
    """Issue an access token for the client-credentials grant."""
    state = state_of(request)
    request_id = uuid.uuid4().hex
    plan = await apply_latency(state.faults.plan(TOKEN_PATH))
    early = fault_reply(plan.disruption, request_id)
    if early is not None:
        state.counters.token_request(issued=False)
        return early

    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if content_type != _FORM:
            raise OAuthError(400, "invalid_request")
        reply = state.auth.issue(await request.body(), request.headers.get("authorization"))
    except OAuthError as error:
        state.counters.token_request(issued=False)
        headers = {"x-request-id": request_id}
        if error.status == 401:
            headers["www-authenticate"] = 'Basic realm="centralmon-simulator"'
        body = msgspec.json.encode({"error": error.error})
        return Response(body, error.status, headers, JSON)

    state.counters.token_request(issued=True)
    return damaged_reply(plan.disruption, msgspec.json.encode(reply), request_id)
