"""The app factory: one FastAPI app per simulator, with no state created at import time."""

from __future__ import annotations

from fastapi import FastAPI

from airflow_provider_centralmon.simulator import (
    routes_admin,
    routes_auth,
    routes_files,
    routes_logs,
    routes_query,
)
from airflow_provider_centralmon.simulator.clock import Clock, RealClock
from airflow_provider_centralmon.simulator.settings import SimulatorSettings
from airflow_provider_centralmon.simulator.state import SimulatorState


def create_app(settings: SimulatorSettings | None = None, clock: Clock | None = None) -> FastAPI:
    """Build a simulator app; its state is reachable as ``app.state.simulator``.

    :param settings: behaviour of the simulator. Default: :class:`SimulatorSettings()`.
    :param clock: where "now" comes from. Default: the real clock.
    """
    app = FastAPI(
        title="Central Monitoring API simulator",
        description="An offline stand-in for the Central Monitoring logs API.",
        # Swagger UI loads its scripts from a CDN, which an offline machine cannot reach; the
        # OpenAPI document itself is served.
        docs_url=None,
        redoc_url=None,
        openapi_url="/_openapi.json",
    )
    app.state.simulator = SimulatorState(
        settings=settings or SimulatorSettings(), clock=clock or RealClock()
    )
    for module in (routes_auth, routes_logs, routes_query, routes_files, routes_admin):
        app.include_router(module.router)
    return app
