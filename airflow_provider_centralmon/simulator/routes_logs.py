"""Log routes: scroll paging, batch submission and batch URL polling, V1 and V2."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from airflow_provider_centralmon.simulator import settings as routes
from airflow_provider_centralmon.simulator.batches import BatchJob, split_into_files
from airflow_provider_centralmon.simulator.pipeline import CallContext, Reply, run_api_call
from airflow_provider_centralmon.simulator.scroll import Cursor
from airflow_provider_centralmon.simulator.search import (
    RequestError,
    parse_search_body,
    select_hits,
)

router = APIRouter()


def scroll(context: CallContext, body: Any) -> Reply:
    """Open a scroll with a search body, or continue one with only a ``scroll_id``."""
    state = context.state
    settings = state.settings
    if isinstance(body, dict) and "scroll_id" in body:
        scroll_id = body["scroll_id"]
        if not isinstance(scroll_id, str):
            raise RequestError(400, "Field 'scroll_id' must be a string")
        page = state.cursors.advance(scroll_id, context.principal.client_id, context.now)
        if page is None:
            raise RequestError(settings.scroll_expired_status, "scroll_id is unknown or expired")
        context.charge(1 if settings.scroll_continuation_costs_quota else 0)
    else:
        query = parse_search_body(body, settings, context.now)
        context.charge()
        hits = select_hits(state.dataset, query, context.now)
        cursor = Cursor(context.principal.client_id, hits, query.size, 0, context.now)
        page = state.cursors.open(cursor)

    if settings.unwrap_scroll_hits:
        logs = b"[" + b",".join(record.source_bytes() for record in page.hits) + b"]"
    else:
        logs = b"[" + b",".join(record.hit for record in page.hits) + b"]"
    payload = {"logs": msgspec.Raw(logs), "scroll_id": page.scroll_id, "has_more": page.has_more}
    return Reply(payload, records=len(page.hits))


def submit_batch(context: CallContext, body: Any) -> Reply:
    """Start an export of every hit of a search; reply with its opaque token."""
    state = context.state
    query = parse_search_body(body, state.settings, context.now)
    context.charge()
    hits = select_hits(state.dataset, query, context.now)
    job = BatchJob(
        job_id=uuid.uuid4().hex,
        client_id=context.principal.client_id,
        submitted_at=context.now,
        window_ms=query.window_ms(context.now),
        files=split_into_files(hits, state.settings.batch_records_per_file),
        echo=dict(body),
    )
    token = state.batches.submit(job)
    state.counters.batch_submitted()
    # Limitation: the reply's "logs" array is undocumented; it echoes the search body.
    return Reply({"token": token, "logs": [job.echo]})


def batch_urls(context: CallContext, body: Any) -> Reply:
    """Exchange a batch token for presigned URLs and their readiness; URLs are fresh."""
    state = context.state
    token = body.get("token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise RequestError(400, "Field 'token' is required")
    job = state.batches.find(token)
    if job is None or job.client_id != context.principal.client_id:
        raise RequestError(400, "Invalid or expired batch token")
    context.charge(1 if state.settings.batch_status_costs_quota else 0)
    return Reply({"presigned_urls": state.batches.describe(job, context.base_url, context.now)})


@router.post(routes.ROUTE_V1_SCROLL)
async def scroll_v1(request: Request) -> Response:
    """Page through the logs of a search (V1 reply)."""
    return await run_api_call(request, routes.ROUTE_V1_SCROLL, scroll)


@router.post(routes.ROUTE_V2_SCROLL)
async def scroll_v2(request: Request) -> Response:
    """Page through the logs of a search (V2 envelope; body assumed equal to V1)."""
    return await run_api_call(request, routes.ROUTE_V2_SCROLL, scroll)


@router.post(routes.ROUTE_V1_BATCH)
async def batch_v1(request: Request) -> Response:
    """Submit a batch export (V1 reply)."""
    return await run_api_call(request, routes.ROUTE_V1_BATCH, submit_batch)


@router.post(routes.ROUTE_V2_BATCH)
async def batch_v2(request: Request) -> Response:
    """Submit a batch export (V2 envelope; undocumented for the real service)."""
    return await run_api_call(request, routes.ROUTE_V2_BATCH, submit_batch)


@router.post(routes.ROUTE_V1_BATCH_URLS)
async def batch_urls_v1(request: Request) -> Response:
    """Return a batch's presigned URLs and readiness (V1 reply)."""
    return await run_api_call(request, routes.ROUTE_V1_BATCH_URLS, batch_urls)


@router.post(routes.ROUTE_V1_BATCH_STATUS)
async def batch_status_v1(request: Request) -> Response:
    """Return a batch's presigned URLs and readiness (alias of the URLs route)."""
    return await run_api_call(request, routes.ROUTE_V1_BATCH_STATUS, batch_urls)


@router.post(routes.ROUTE_V2_BATCH_URLS)
async def batch_urls_v2(request: Request) -> Response:
    """Return a batch's presigned URLs and readiness (V2 envelope)."""
    return await run_api_call(request, routes.ROUTE_V2_BATCH_URLS, batch_urls)


@router.post(routes.ROUTE_V2_BATCH_STATUS)
async def batch_status_v2(request: Request) -> Response:
    """Return a batch's presigned URLs and readiness (V2 envelope, alias)."""
    return await run_api_call(request, routes.ROUTE_V2_BATCH_STATUS, batch_urls)
