"""Admin routes: counters, faults, reset and the manual clock.

They need no token: the simulator listens on loopback only, and these routes exist for the
tests and demos that run next to it.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

import msgspec
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from airflow_provider_centralmon.simulator.clock import ManualClock
from airflow_provider_centralmon.simulator.faults import FaultRule
from airflow_provider_centralmon.simulator.pipeline import JSON, error_response, state_of

router = APIRouter(prefix="/_admin")
# Admin replies are not calls of the simulated service; their request id says so.
_ADMIN_REQUEST_ID = "simulator-admin"
# One step of the manual clock: ten years either way keeps datetimes in range.
MAX_CLOCK_STEP_S = 10 * 366 * 86_400


@router.get("/counters")
async def counters(request: Request) -> Response:
    """Return token requests, calls, records and bytes per route, batch submissions."""
    return _json(state_of(request).counters_snapshot())


@router.post("/reset")
async def reset(request: Request) -> Response:
    """Forget counters, quotas, cursors, batches and run-time faults."""
    state_of(request).reset()
    return _json({"reset": True})


@router.get("/faults")
async def list_faults(request: Request) -> Response:
    """Return the active fault rules and their remaining counts."""
    return _json({"faults": [_rule_dict(rule) for rule in state_of(request).faults.rules()]})


@router.post("/faults")
async def set_faults(request: Request) -> Response:
    """Set fault rules: ``{"faults": [...], "replace": true, "revoke_tokens": false}``."""
    state = state_of(request)
    try:
        body = msgspec.json.decode(await request.body())
        rules = [FaultRule.from_spec(spec) for spec in body.get("faults", [])]
    except (msgspec.DecodeError, RecursionError, AttributeError, TypeError, ValueError) as error:
        return error_response(400, f"Invalid fault specification: {error}", _ADMIN_REQUEST_ID)

    if body.get("replace", True):
        state.faults.set_rules(rules)
    else:
        state.faults.add_rules(rules)
    if body.get("revoke_tokens"):
        state.auth.revoke_all()
    return _json({"faults": [_rule_dict(rule) for rule in state.faults.rules()]})


@router.post("/clock")
async def move_clock(request: Request) -> Response:
    """Set (``{"set": iso}``) or advance (``{"advance_s": n}``) a manual clock."""
    clock = state_of(request).clock
    if not isinstance(clock, ManualClock):
        return error_response(409, "The simulator runs on the real clock", _ADMIN_REQUEST_ID)
    try:
        body = msgspec.json.decode(await request.body())
        if "set" in body:
            clock.set(datetime.fromisoformat(body["set"]))
        advance_s = float(body.get("advance_s", 0))
        if not abs(advance_s) <= MAX_CLOCK_STEP_S:
            raise ValueError(f"advance_s must be a number of seconds within ±{MAX_CLOCK_STEP_S}")
        clock.advance(advance_s)
    except (msgspec.DecodeError, RecursionError, AttributeError, TypeError, ValueError) as error:
        return error_response(400, f"Invalid clock change: {error}", _ADMIN_REQUEST_ID)
    return _json({"now": clock.now().isoformat()})


def _rule_dict(rule: FaultRule) -> dict[str, Any]:
    return dataclasses.asdict(rule)


def _json(payload: dict[str, Any]) -> Response:
    return Response(msgspec.json.encode(payload), 200, media_type=JSON)
