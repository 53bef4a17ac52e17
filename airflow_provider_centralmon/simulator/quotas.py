"""Daily request quotas per client and route, reset at 00:00 UTC of the simulator clock."""

from __future__ import annotations

import threading
from collections import defaultdict
from datetime import date

from airflow_provider_centralmon.simulator.clock import Clock
from airflow_provider_centralmon.simulator.settings import QUOTA_GROUP, SimulatorSettings


class QuotaExceeded(Exception):
    """The route's daily quota is used up."""


class QuotaBook:
    """Counts the calls each client made to each route group today.

    :param settings: simulator settings (the limits)
    :param clock: the simulator clock, whose UTC date decides the day
    """

    def __init__(self, *, settings: SimulatorSettings, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._used: dict[tuple[str, str, date], int] = defaultdict(int)

    def charge(self, client_id: str, route: str, cost: int) -> int | None:
        """Spend ``cost`` calls of ``route``'s quota; return what remains (``None``: no limit).

        A free call (``cost`` 0) succeeds even when nothing remains.
        """
        limit = self._settings.quota_limit(route)
        key = (client_id, QUOTA_GROUP.get(route, route), self._clock.now().date())
        with self._lock:
            if limit is None:
                return None
            if cost and self._used[key] + cost > limit:
                raise QuotaExceeded(route)
            self._used[key] += cost
            return limit - self._used[key]

    def remaining(self, client_id: str, route: str) -> int | None:
        """Return what remains of ``route``'s quota today, without spending any."""
        return self.charge(client_id, route, 0)

    def reset(self) -> None:
        """Forget every call made."""
        with self._lock:
            self._used.clear()
