"""Clocks the simulator reads its "now" from: the real one, or one a test moves by hand."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Anything that tells the current instant as a timezone-aware UTC datetime."""

    def now(self) -> datetime:
        """Return the current instant."""


class RealClock:
    """The wall clock, in UTC."""

    def now(self) -> datetime:
        """Return the current instant."""
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to; safe to move from another thread.

    :param start: the instant it shows first (timezone-aware). Default: the wall clock's
        now, floored to the second.
    """

    def __init__(self, *, start: datetime | None = None) -> None:
        if start is None:
            start = datetime.now(UTC).replace(microsecond=0)
        _require_aware(start)
        self._lock = threading.Lock()
        self._now = start.astimezone(UTC)
        self.start = self._now

    def now(self) -> datetime:
        """Return the instant the clock shows."""
        with self._lock:
            return self._now

    def set(self, instant: datetime) -> None:
        """Make the clock show ``instant`` (timezone-aware; may go backwards)."""
        _require_aware(instant)
        with self._lock:
            self._now = instant.astimezone(UTC)

    def advance(self, delta: timedelta | float) -> datetime:
        """Move the clock forward by ``delta`` (a timedelta or seconds); return the new now."""
        if not isinstance(delta, timedelta):
            delta = timedelta(seconds=delta)
        with self._lock:
            self._now += delta
            return self._now

    def rewind(self) -> None:
        """Put the clock back at the instant it was created with."""
        self.set(self.start)

    def __repr__(self) -> str:
        return f"ManualClock(now={self.now().isoformat()})"


def _require_aware(instant: datetime) -> None:
    if instant.tzinfo is None:
        raise ValueError("the simulator clock needs timezone-aware datetimes")
