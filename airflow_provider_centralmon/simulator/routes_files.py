"""Batch result files behind presigned URLs, answering like S3 does."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from airflow_provider_centralmon.simulator.batches import PresignError
from airflow_provider_centralmon.simulator.pipeline import (
    apply_latency,
    damaged_reply,
    fault_reply,
    state_of,
)
from airflow_provider_centralmon.simulator.settings import PRESIGNED_PREFIX

router = APIRouter()


@router.get(PRESIGNED_PREFIX + "/{job_id}/{name}")
async def presigned_file(request: Request, job_id: str, name: str) -> Response:
    """Serve one batch file as a JSON array of hits, if the presigned URL is valid."""
    state = state_of(request)
    request_id = uuid.uuid4().hex
    path = request.url.path
    plan = await apply_latency(state.faults.plan(path))
    early = fault_reply(plan.disruption, request_id)
    if early is not None:
        state.counters.served(PRESIGNED_PREFIX, 0, len(early.body))
        return early

    try:
        if "authorization" in request.headers:
            raise PresignError(
                400,
                "InvalidArgument",
                "Only one auth mechanism allowed; "
                "only the X-Amz-Algorithm query parameter, Signature query "
                "string parameter or the Authorization header should be specified",
            )
        records = state.batches.file_for(path, dict(request.query_params), state.clock.now())
    except PresignError as error:
        body = _s3_error(error, request_id)
        state.counters.served(PRESIGNED_PREFIX, 0, len(body))
        return Response(body, error.status, {"x-amz-request-id": request_id}, "application/xml")

    content = b"[" + b",".join(record.hit for record in records) + b"]"
    state.counters.served(PRESIGNED_PREFIX, len(records), len(content))
    return damaged_reply(plan.disruption, content, request_id)


def _s3_error(error: PresignError, request_id: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{error.code}</Code><Message>{error.message}</Message>"
        f"<RequestId>{request_id}</RequestId></Error>"
    ).encode()
