"""A running simulator and everything a test needs from it."""

from __future__ import annotations

import json
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from airflow_provider_centralmon.simulator.app import create_app
from airflow_provider_centralmon.simulator.clock import Clock, ManualClock, RealClock
from airflow_provider_centralmon.simulator.dataset import RecordFilter, to_epoch_ms
from airflow_provider_centralmon.simulator.faults import FaultRule
from airflow_provider_centralmon.simulator.search import parse_search_body, select_hits
from airflow_provider_centralmon.simulator.server import ServerThread
from airflow_provider_centralmon.simulator.settings import TOKEN_PATH, SimulatorSettings
from airflow_provider_centralmon.simulator.state import SimulatorState

if TYPE_CHECKING:
    import pytest


class SimulatorHandle:
    """Starts a simulator on a free loopback port and exposes it to tests.

    :param settings: behaviour of the simulator. Default: :class:`SimulatorSettings()`.
    :param clock: the simulator clock. Default: the real clock; pass a
        :class:`ManualClock` to move time by hand.
    :param host: loopback address to bind. Default ``127.0.0.1``.
    :param port: port to bind; 0 (default) picks a free one
    """

    def __init__(
        self,
        *,
        settings: SimulatorSettings | None = None,
        clock: Clock | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.settings = settings or SimulatorSettings()
        self.clock = clock or RealClock()
        self.app = create_app(self.settings, self.clock)
        self.state: SimulatorState = self.app.state.simulator
        self._server = ServerThread(app=self.app, host=host, port=port)
        self._server.start()
        self.base_url = self._server.base_url
        self.auth_url = self.base_url + TOKEN_PATH
        self.client_id = self.settings.clients[0].client_id
        self.client_secret = self.settings.clients[0].client_secret

    def __repr__(self) -> str:
        return f"SimulatorHandle(base_url={self.base_url!r})"

    def __enter__(self) -> SimulatorHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop the server."""
        self._server.stop()

    def connection_dict(self, **extra: Any) -> dict[str, Any]:
        """Return an Airflow ``centralmon`` connection to this simulator, as a dict."""
        return {
            "conn_type": "centralmon",
            "host": self.base_url,
            "login": self.client_id,
            "password": self.client_secret,
            "extra": {"auth_url": self.auth_url, **extra},
        }

    def connection_json(self, **extra: Any) -> str:
        """Return the connection in the JSON form ``AIRFLOW_CONN_<ID>`` accepts.

        :param extra: connection extras added next to ``auth_url``
        """
        return json.dumps(self.connection_dict(**extra))

    def connection_uri(self, **extra: Any) -> str:
        """Return the connection in Airflow's URI form (the host keeps its ``http://``)."""
        query = urlencode(
            {
                key: json.dumps(value) if not isinstance(value, str) else value
                for key, value in {"auth_url": self.auth_url, **extra}.items()
            }
        )
        login, password = quote(self.client_id, safe=""), quote(self.client_secret, safe="")
        return f"centralmon://{login}:{password}@{quote(self.base_url, safe='')}/?{query}"

    def use_as_connection(
        self, monkeypatch: pytest.MonkeyPatch, conn_id: str = "centralmon_default", **extra: Any
    ) -> str:
        """Point the Airflow connection ``conn_id`` at this simulator for one test.

        :param monkeypatch: the test's ``monkeypatch`` fixture, which undoes the change
        :param conn_id: the connection id. Default ``centralmon_default``.
        :param extra: connection extras added next to ``auth_url``
        :return: the connection id
        """
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", self.connection_json(**extra))
        return conn_id

    def counters(self) -> dict[str, Any]:
        """Return token requests, per-route calls/records/bytes and batch submissions."""
        return self.state.counters_snapshot()

    def set_faults(self, *rules: FaultRule | dict[str, Any] | str, replace: bool = True) -> None:
        """Inject faults: :class:`FaultRule` objects, dicts of their fields or spec strings.

        :param replace: drop the faults active so far. Default ``True``.
        """
        parsed = [FaultRule.from_spec(rule) for rule in rules]
        if replace:
            self.state.faults.set_rules(parsed)
        else:
            self.state.faults.add_rules(parsed)

    def revoke_tokens(self) -> None:
        """Make every access token issued so far invalid."""
        self.state.auth.revoke_all()

    def reset(self) -> None:
        """Forget counters, quotas, cursors, batches, faults and token revocations.

        A manual clock is put back at its start.
        """
        self.state.reset()
        if isinstance(self.clock, ManualClock):
            self.clock.rewind()

    def now(self) -> datetime:
        """Return the simulator clock's now."""
        return self.clock.now()

    def expected_hits(self, body: dict[str, Any], at: datetime | None = None) -> list[Any]:
        """Return exactly the hits a search with ``body`` finds at ``at`` (default: now)."""
        now = at or self.clock.now()
        query = parse_search_body(body, self.settings, now)
        return [record.as_hit() for record in select_hits(self.state.dataset, query, now)]

    def expected_ids(self, body: dict[str, Any], at: datetime | None = None) -> list[str]:
        """Return the ``_id`` of each hit :meth:`expected_hits` would return, cheaply."""
        now = at or self.clock.now()
        query = parse_search_body(body, self.settings, now)
        return [record.record_id for record in select_hits(self.state.dataset, query, now)]

    def records_between(
        self, start: datetime, end: datetime, application: str, **equals: Any
    ) -> list[Any]:
        """Return the hits of ``application`` with ``start <= @timestamp < end``, sorted.

        :param equals: exact values of ``_source`` fields the hits must have
        """
        record_filter = RecordFilter(application, tuple(equals.items()))
        records = self.state.dataset.select(record_filter, to_epoch_ms(start), to_epoch_ms(end))
        return [record.as_hit() for record in records]

    def hits_between(self, body: dict[str, Any], start: datetime, end: datetime) -> list[Any]:
        """Return the hits a search body selects with ``start <= @timestamp < end``.

        ``time_range`` in ``body`` is ignored (it may be absent): the window is explicit.
        """
        query = parse_search_body({**body, "time_range": "now"}, self.settings, end)
        records = self.state.dataset.select(
            query.record_filter, to_epoch_ms(start), to_epoch_ms(end)
        )
        return [record.as_hit() for record in records]

    def access_token(self) -> str:
        """Return a fresh access token of the default client (not counted as a request)."""
        form = urlencode(
            {
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self.client_secret,
            }
        )
        return str(self.state.auth.issue(form.encode(), None)["access_token"])
