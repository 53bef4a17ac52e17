"""The billing query route: ATR ticket count of a domain over a time range.

Limitation: the real service documents only the purpose of this route. The simulator
assumes a body ``{"domain_name": str, "time_range": <date math>}`` (optional
``application``, default ``atr``) and replies ``{"domain_name", "time_range",
"ticket_count"}``, counting the ATR records of that domain in the window.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from airflow_provider_centralmon.simulator import settings as routes
from airflow_provider_centralmon.simulator.pipeline import CallContext, Reply, run_api_call
from airflow_provider_centralmon.simulator.search import (
    RequestError,
    parse_search_body,
    select_hits,
)

router = APIRouter()


def ticket_count(context: CallContext, body: Any) -> Reply:
    """Count the records of ``domain_name`` in the window (assumed reply shape)."""
    if not isinstance(body, dict):
        raise RequestError(400, "Request body must be a JSON object")
    domain_name = body.get("domain_name")
    if not isinstance(domain_name, str) or not domain_name:
        raise RequestError(400, "Field 'domain_name' is required and must be a string")
    search = {
        "application": body.get("application", "atr"),
        "time_range": body.get("time_range"),
        "domain": domain_name,
    }
    query = parse_search_body(search, context.state.settings, context.now)
    context.charge()
    count = len(select_hits(context.state.dataset, query, context.now))
    payload = {"domain_name": domain_name, "time_range": query.time_range, "ticket_count": count}
    return Reply(payload)


@router.post(routes.ROUTE_V1_QUERY)
async def query_v1(request: Request) -> Response:
    """Return the ticket count of a domain over a time range (V1 reply; assumed shape)."""
    return await run_api_call(request, routes.ROUTE_V1_QUERY, ticket_count)


@router.post(routes.ROUTE_V2_QUERY)
async def query_v2(request: Request) -> Response:
    """Return the ticket count of a domain over a time range (V2 envelope; assumed shape)."""
    return await run_api_call(request, routes.ROUTE_V2_QUERY, ticket_count)
