"""The scroll cursor as a state machine without I/O, driven by both hooks.

The service promises no gaps and no duplicates within one scroll, but documents neither the
cursor's lifetime nor a page limit. The cursor here therefore guards against the ways a scroll
could run forever: a page limit chosen by the caller, the same scroll id handed back with no
records, and a run of empty pages that still announce more.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_provider_centralmon.exceptions import (
    CentralMonitoringError,
    InvalidParameterError,
    ProtocolError,
    ScrollExpiredError,
)
from airflow_provider_centralmon.hooks._core import RequestBody
from airflow_provider_centralmon.hooks._types import CallMeta, ScrollPage

MAX_EMPTY_PAGES = 5


class ScrollCursor:
    """Build each scroll request and check each page.

    :param body: the search body of the first call, or a function building it for each attempt
    :param max_pages: stop after this many pages, even if the service has more; None: no limit
    """

    def __init__(self, body: RequestBody, *, max_pages: int | None = None) -> None:
        if max_pages is not None and (isinstance(max_pages, bool) or max_pages < 1):
            raise InvalidParameterError(f"max_pages must be a positive integer, got {max_pages!r}")
        if not isinstance(body, Mapping) and not callable(body):
            raise InvalidParameterError(
                "The scroll body must be a mapping of search fields, or a function returning one"
            )
        self._first_body: RequestBody = body if callable(body) else dict(body)
        self._max_pages = max_pages
        self._pages = 0
        self._scroll_id: str | None = None
        self._route: str | None = None
        self._empty_in_a_row = 0
        self._finished = False

    def next_request(self) -> RequestBody | None:
        """Return the body of the next call, or None when the scroll is over."""
        if self._finished or (self._max_pages is not None and self._pages >= self._max_pages):
            return None
        if self._pages == 0:
            return self._first_body
        # Only the newest cursor is valid: the service may change it on every page.
        return {"scroll_id": self._scroll_id}

    def accept(self, payload: Any, meta: CallMeta) -> ScrollPage:
        """Check one reply and turn it into a page."""
        if not isinstance(payload, Mapping):
            raise self._error("a scroll reply that is not an object", meta)
        stated = self._stated_has_more(payload.get("has_more"), meta)
        records = payload.get("logs")
        if records is None and stated is False and "logs" in payload:
            # Read as "nothing matched": the reply says in so many words that it is the end.
            records = []
        if records is None:
            raise self._error("a scroll reply without a logs list", meta)
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise self._error("a scroll reply whose logs are not a list of objects", meta)

        scroll_id = payload.get("scroll_id")
        has_more = self._has_more(stated, records, scroll_id, meta)
        if has_more:
            self._check_progress(scroll_id, records, meta)
        self._scroll_id = scroll_id if isinstance(scroll_id, str) else None
        self._route = meta.route
        self._pages += 1
        self._finished = not has_more
        return ScrollPage(records=records, number=self._pages, has_more=has_more, meta=meta)

    def expired(self, error: CentralMonitoringError) -> ScrollExpiredError | None:
        """Return the error to raise instead of ``error`` when it means the cursor is gone.

        A 404 on the first call means a wrong route. On a continuation the route has just
        answered, so a 404 means the service no longer knows the cursor: it expired, or it
        moved on when a reply was lost and the retry sent the old one again.
        """
        if self._pages == 0 or error.http_status != 404:
            return None
        return ScrollExpiredError(
            f"{self._route} answered 404 after {self._pages} pages: the scroll cursor expired "
            "or moved on (as it does when a reply is lost and the call is sent again). A "
            "scroll cannot be resumed: run the export again",
            http_status=error.http_status,
            request_id=error.request_id,
        )

    def _check_progress(self, scroll_id: Any, records: list[Any], meta: CallMeta) -> None:
        if not isinstance(scroll_id, str) or not scroll_id:
            raise self._error("has_more without a scroll_id to continue with", meta)
        if records:
            self._empty_in_a_row = 0
            return
        if scroll_id == self._scroll_id:
            raise self._error("the same scroll_id again with no records (a stuck cursor)", meta)
        self._empty_in_a_row += 1
        if self._empty_in_a_row >= MAX_EMPTY_PAGES:
            raise self._error(
                f"{self._empty_in_a_row} empty pages in a row that say has_more", meta
            )

    def _stated_has_more(self, raw: Any, meta: CallMeta) -> bool | None:
        """Read ``has_more``: a boolean, ``"true"``/``"false"`` or 1/0; None when not stated."""
        if raw is None or isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
            return raw.strip().lower() == "true"
        if isinstance(raw, int) and raw in (0, 1):
            return raw == 1
        # The value itself is not quoted: only text that went through redaction may show.
        raise self._error(f"an unreadable has_more (a {type(raw).__name__})", meta)

    def _has_more(
        self, stated: bool | None, records: list[Any], scroll_id: Any, meta: CallMeta
    ) -> bool:
        if stated is not None:
            return stated
        # Not stated: continue while pages carry records, as classic scrolls do; an empty page
        # is the end. Records without a cursor leave no way to tell whether more exist, and
        # ending there could drop records without a word.
        if not records:
            return False
        if not isinstance(scroll_id, str) or not scroll_id:
            raise self._error("records with neither has_more nor a scroll_id", meta)
        return True

    def _error(self, what: str, meta: CallMeta) -> ProtocolError:
        # The scroll id is a credential for the query's results: never part of the message.
        return ProtocolError(
            f"{meta.route} returned {what} after {self._pages} pages; the scroll was stopped",
            http_status=meta.http_status,
            request_id=meta.request_id,
        )
