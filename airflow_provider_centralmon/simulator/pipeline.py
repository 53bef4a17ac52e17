"""What every API call goes through: faults, bearer token, grants, JSON body, envelope.

Route handlers are plain functions of a :class:`CallContext` and the decoded body that
return a :class:`Reply`; this module turns them into HTTP replies in the V1 or V2 envelope,
with the request id in the ``x-request-id`` header, and counts what was served.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from airflow_provider_centralmon.simulator.auth import Principal
from airflow_provider_centralmon.simulator.faults import FaultPlan, FaultRule
from airflow_provider_centralmon.simulator.quotas import QuotaExceeded
from airflow_provider_centralmon.simulator.search import RequestError
from airflow_provider_centralmon.simulator.state import SimulatorState

JSON = "application/json"
QUOTA_EXCEEDED_BODY = b'{"statusCode":429,"body":{"error":"Rate limit exceeded"}}'
_ENCODER = msgspec.json.Encoder()
_GATEWAY_PAGES = {
    500: "500 Internal Server Error",
    502: "502 Bad Gateway",
    503: "503 Service Temporarily Unavailable",
}


class DroppedConnection(Exception):
    """Raised inside a reply body on purpose, so the server closes the connection."""


@dataclass
class Reply:
    """A handler's successful answer: the payload (``msgspec.Raw`` allowed inside)."""

    payload: dict[str, Any]
    records: int = 0


@dataclass
class CallContext:
    """What a handler knows about the call it answers."""

    state: SimulatorState
    principal: Principal
    route: str
    base_url: str
    now: datetime
    remaining: int | None = field(default=None)
    charged: bool = False

    def charge(self, cost: int = 1) -> None:
        """Spend ``cost`` calls of the route's daily quota (raises when used up)."""
        self.remaining = self.state.quotas.charge(self.principal.client_id, self.route, cost)
        self.charged = True


Handler = Callable[[CallContext, Any], Reply]


def state_of(request: Request) -> SimulatorState:
    """Return the simulator state of the app serving ``request``."""
    state: SimulatorState = request.app.state.simulator
    return state


async def run_api_call(request: Request, route: str, handler: Handler) -> Response:
    """Answer one API call with ``handler``, applying faults, auth, quota and envelope."""
    state = state_of(request)
    request_id = uuid.uuid4().hex
    plan = await apply_latency(state.faults.plan(route))
    early = fault_reply(plan.disruption, request_id)
    if early is not None:
        state.counters.served(route, 0, len(early.body))
        return early

    try:
        context = _authorize(request, state, route)
        body = _decode_json(await request.body())
        reply = handler(context, body)
        if not context.charged:
            context.remaining = state.quotas.remaining(context.principal.client_id, route)
    except RequestError as error:
        response = error_response(error.status, error.detail, request_id)
    except QuotaExceeded:
        response = Response(QUOTA_EXCEEDED_BODY, 429, {"x-request-id": request_id}, JSON)
    else:
        content = _envelope(route, reply.payload, context.remaining, request_id)
        state.counters.served(route, reply.records, len(content))
        return damaged_reply(plan.disruption, content, request_id)
    state.counters.served(route, 0, len(response.body))
    return response


async def apply_latency(plan: FaultPlan) -> FaultPlan:
    """Wait the plan's added latency (real seconds), then hand the plan back."""
    if plan.latency_s > 0:
        await asyncio.sleep(plan.latency_s)
    return plan


def fault_reply(rule: FaultRule | None, request_id: str) -> Response | None:
    """Return the reply that replaces the real one under an error or 429 fault, if any."""
    headers = {"x-request-id": request_id}
    if rule is not None and rule.kind == "error":
        title = _GATEWAY_PAGES[rule.status]
        page = f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        page += f"<center><h1>{title}</h1></center>\r\n</body>\r\n</html>\r\n"
        return Response(page.encode(), rule.status, headers, "text/html")
    if rule is not None and rule.kind == "rate_limit":
        return Response(QUOTA_EXCEEDED_BODY, 429, headers, JSON)
    return None


def damaged_reply(
    rule: FaultRule | None, content: bytes, request_id: str, media_type: str = JSON
) -> Response:
    """Return ``content`` as a 200, cut short or dropped midway under such a fault."""
    headers = {"x-request-id": request_id}
    if rule is not None and rule.kind == "truncate":
        return Response(content[: len(content) // 2], 200, headers, media_type)
    if rule is not None and rule.kind == "drop":
        headers["content-length"] = str(len(content))
        return StreamingResponse(_half_then_drop(content), 200, headers, media_type)
    return Response(content, 200, headers, media_type)


def error_response(status: int, detail: str, request_id: str) -> Response:
    """Return the service's JSON error reply."""
    body = _ENCODER.encode({"status_code": status, "detail": detail})
    return Response(body, status, {"x-request-id": request_id}, JSON)


def base_url_of(request: Request) -> str:
    """Return the scheme, host and port the client used to reach the simulator."""
    return str(request.base_url).rstrip("/")


async def _half_then_drop(content: bytes) -> AsyncIterator[bytes]:
    yield content[: len(content) // 2]
    raise DroppedConnection("connection dropped by an injected fault")


def _authorize(request: Request, state: SimulatorState, route: str) -> CallContext:
    # Limitation: the real 403 body is undocumented; the simulator reuses the 400/401 shape.
    principal = state.auth.verify(request.headers.get("authorization"))
    if principal.routes is not None and route not in principal.routes:
        raise RequestError(403, f"Client is not authorized to call {route}")
    scope = state.settings.required_scope
    if scope is not None and scope not in principal.scopes:
        raise RequestError(403, f"Access token lacks the scope {scope}")
    return CallContext(
        state=state,
        principal=principal,
        route=route,
        base_url=base_url_of(request),
        now=state.clock.now(),
    )


def _decode_json(raw: bytes) -> Any:
    try:
        return msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        # msgspec gives up on deep nesting with a RecursionError; no valid request nests so.
        raise RequestError(400, "Request body is not valid JSON") from None


def _envelope(route: str, payload: dict[str, Any], remaining: int | None, request_id: str) -> bytes:
    if route.startswith("/v2/"):
        meta: dict[str, Any] = {"api_version": "v2", "request_id": request_id}
        if remaining is not None:
            meta["rate_limit"] = {"daily_remaining": remaining}
        return _ENCODER.encode({"data": payload, "meta": meta})
    if remaining is not None:
        payload["daily_requests_remaining"] = remaining
    return _ENCODER.encode(payload)
