"""Run a simulator app with uvicorn in a background thread on a free loopback port."""

from __future__ import annotations

import logging
import socket
import threading
import time

import uvicorn
from fastapi import FastAPI

from airflow_provider_centralmon.simulator.pipeline import DroppedConnection
from airflow_provider_centralmon.simulator.settings import check_loopback_host

logger = logging.getLogger(__name__)
STARTUP_TIMEOUT_S = 10.0


class _HideInjectedDrops(logging.Filter):
    """Keeps the on-purpose connection drops out of uvicorn's error log."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        while error is not None:
            if isinstance(error, DroppedConnection):
                return False
            error = error.__cause__ or error.__context__
            if isinstance(error, BaseExceptionGroup):
                error = next(iter(error.exceptions), None)
        return True


def hide_injected_drops() -> None:
    """Keep on-purpose connection drops out of uvicorn's error log (idempotent)."""
    uvicorn_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _HideInjectedDrops) for f in uvicorn_log.filters):
        uvicorn_log.addFilter(_HideInjectedDrops())


class ServerThread:
    """A uvicorn server for ``app``, serving from a daemon thread.

    :param app: the ASGI app to serve
    :param host: loopback address to bind, ``localhost`` or 127.x.y.z; anything else is a
        ``ValueError``. Default ``127.0.0.1``.
    :param port: port to bind; 0 (default) picks a free one
    :param log_level: uvicorn's log level. Default ``"warning"``.
    """

    def __init__(
        self, *, app: FastAPI, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"
    ) -> None:
        self.app = app
        self.host = check_loopback_host(host)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.port: int = self._socket.getsockname()[1]
        config = uvicorn.Config(
            app, log_level=log_level, access_log=False, lifespan="off", timeout_keep_alive=30
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            daemon=True,
            name=f"centralmon-simulator-{self.port}",
        )

    @property
    def base_url(self) -> str:
        """Return ``http://host:port`` of the running server."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        """Start serving; return once the server accepts connections."""
        hide_injected_drops()
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the simulator did not start")
            time.sleep(0.01)
        logger.info("Central Monitoring simulator listening on %s", self.base_url)

    def stop(self) -> None:
        """Stop serving and wait for the thread to end."""
        self._server.should_exit = True
        self._thread.join(timeout=STARTUP_TIMEOUT_S)
        self._socket.close()
