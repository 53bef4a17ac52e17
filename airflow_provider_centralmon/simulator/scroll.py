"""Scroll cursors: a snapshot of a search's hits and how far a client has read it.

Every page hands out a new opaque ``scroll_id`` and retires the previous one, so a client
that resends an old cursor is caught. A cursor unused for ``scroll_idle_timeout_s`` of the
simulator clock expires.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from airflow_provider_centralmon.simulator.dataset import LogRecord


@dataclass
class Cursor:
    """One open scroll: the hits found by its first call and the read position."""

    client_id: str
    hits: list[LogRecord]
    size: int
    position: int
    last_used: datetime


@dataclass(frozen=True)
class Page:
    """One page of a scroll."""

    hits: list[LogRecord]
    scroll_id: str
    has_more: bool


class CursorStore:
    """Open cursors by scroll id; thread-safe.

    :param idle_timeout: how long an unused cursor lives
    """

    def __init__(self, *, idle_timeout: timedelta) -> None:
        self._idle_timeout = idle_timeout
        self._lock = threading.Lock()
        self._cursors: dict[str, Cursor] = {}

    def open(self, cursor: Cursor) -> Page:
        """Register a new scroll and return its first page; forget cursors idle too long."""
        oldest_allowed = cursor.last_used - self._idle_timeout
        with self._lock:
            for scroll_id, other in list(self._cursors.items()):
                if other.last_used < oldest_allowed:
                    del self._cursors[scroll_id]
        return self._page(cursor)

    def advance(self, scroll_id: str, client_id: str, now: datetime) -> Page | None:
        """Return the next page of ``scroll_id``, or ``None`` if unknown or expired."""
        with self._lock:
            cursor = self._cursors.get(scroll_id)
            # Another client presenting the id learns nothing and leaves the cursor intact.
            if cursor is None or cursor.client_id != client_id:
                return None
            del self._cursors[scroll_id]
        if now - cursor.last_used > self._idle_timeout:
            return None
        cursor.last_used = now
        return self._page(cursor)

    def clear(self) -> None:
        """Drop every open cursor."""
        with self._lock:
            self._cursors.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._cursors)

    def _page(self, cursor: Cursor) -> Page:
        end = cursor.position + cursor.size
        hits = cursor.hits[cursor.position : end]
        cursor.position = end
        scroll_id = secrets.token_urlsafe(32)
        has_more = end < len(cursor.hits)
        if has_more:
            with self._lock:
                self._cursors[scroll_id] = cursor
        return Page(hits=hits, scroll_id=scroll_id, has_more=has_more)
