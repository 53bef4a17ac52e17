"""Everything one simulator instance remembers, built from its settings and clock."""

from __future__ import annotations

import threading
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from airflow_provider_centralmon.simulator.auth import TokenAuthority
from airflow_provider_centralmon.simulator.batches import BatchStore
from airflow_provider_centralmon.simulator.clock import Clock
from airflow_provider_centralmon.simulator.dataset import Dataset, to_epoch_ms
from airflow_provider_centralmon.simulator.datemath import floor_to_unit
from airflow_provider_centralmon.simulator.faults import FaultInjector
from airflow_provider_centralmon.simulator.quotas import QuotaBook
from airflow_provider_centralmon.simulator.scroll import CursorStore
from airflow_provider_centralmon.simulator.settings import SimulatorSettings


class Counters:
    """What the simulator has served since the last reset; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Set every count back to zero."""
        with self._lock:
            self._token_requests = 0
            self._tokens_issued = 0
            self._batch_submissions = 0
            self._routes: dict[str, dict[str, int]] = defaultdict(
                lambda: {"calls": 0, "records": 0, "bytes": 0}
            )

    def token_request(self, issued: bool) -> None:
        """Count one call of the token endpoint, and whether it issued a token."""
        with self._lock:
            self._token_requests += 1
            self._tokens_issued += int(issued)

    def batch_submitted(self) -> None:
        """Count one accepted batch submission."""
        with self._lock:
            self._batch_submissions += 1

    def served(self, route: str, records: int, size: int) -> None:
        """Count one call of ``route`` that sent ``records`` records in ``size`` bytes."""
        with self._lock:
            counts = self._routes[route]
            counts["calls"] += 1
            counts["records"] += records
            counts["bytes"] += size

    def snapshot(self, faults_injected: int) -> dict[str, Any]:
        """Return every count as plain JSON-ready data."""
        with self._lock:
            return {
                "token_requests": self._token_requests,
                "tokens_issued": self._tokens_issued,
                "batch_submissions": self._batch_submissions,
                "faults_injected": faults_injected,
                "routes": {route: dict(counts) for route, counts in self._routes.items()},
            }


class SimulatorState:
    """The dataset, credentials, quotas, cursors, batches, faults and counters of one app.

    :param settings: simulator settings
    :param clock: the simulator clock
    """

    def __init__(self, *, settings: SimulatorSettings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self.dataset = build_dataset(settings, clock.now())
        self.auth = TokenAuthority(settings=settings, clock=clock)
        self.quotas = QuotaBook(settings=settings, clock=clock)
        self.faults = FaultInjector(seed=settings.seed, rules=settings.faults)
        self.cursors = CursorStore(idle_timeout=timedelta(seconds=settings.scroll_idle_timeout_s))
        self.batches = BatchStore(settings=settings)
        self.counters = Counters()

    def reset(self) -> None:
        """Forget calls, quotas, cursors, batches, faults and revocations; keep the dataset.

        Tokens issued before stay valid until they expire, so a client that caches its token
        across tests is not disturbed by a revocation in an earlier test.
        """
        self.auth.forgive_revocations()
        self.counters.reset()
        self.quotas.reset()
        self.cursors.clear()
        self.batches.clear()
        self.faults.reset(self.settings.faults)

    def counters_snapshot(self) -> dict[str, Any]:
        """Return the counters as plain JSON-ready data."""
        return self.counters.snapshot(self.faults.injected)


def build_dataset(settings: SimulatorSettings, now: datetime) -> Dataset:
    """Return the dataset the settings describe, ending at ``dataset_end`` or ``now``."""
    end = settings.dataset_end or floor_to_unit(now, "m")
    start = end - settings.span
    minutes = settings.span.total_seconds() / 60
    rate = settings.records_per_minute
    if settings.total_records is not None:
        rate = settings.total_records / (len(settings.applications) * max(minutes, 1 / 60))
    return Dataset(
        seed=settings.seed,
        applications=settings.applications,
        domains=settings.domains,
        start_ms=to_epoch_ms(start),
        end_ms=to_epoch_ms(end),
        records_per_minute=rate,
    )
