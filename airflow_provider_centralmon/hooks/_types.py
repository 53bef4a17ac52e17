"""Immutable replies the hooks hand to operators, sensors and triggers.

Fields that hold a secret (batch tokens, presigned URLs) are left out of ``repr`` so that a
reply printed in a log or a traceback shows nothing that could be replayed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class CallMeta:
    """What one API call told about itself.

    :param route: path that was called, e.g. ``/v2/logs/scroll``
    :param http_status: HTTP status of the reply
    :param request_id: the service's request id (V2 ``meta.request_id`` or ``x-request-id``)
    :param daily_remaining: calls left today on this route, when the reply says so
    :param elapsed_s: wall time of the call in seconds, retries included
    :param records: number of records in the reply, when it carries records
    """

    route: str
    http_status: int
    request_id: str | None
    daily_remaining: int | None
    elapsed_s: float
    records: int | None = None


@dataclass(frozen=True)
class ScrollPage:
    """One page of a scroll.

    :param records: the log records of the page, as the service sent them
    :param number: 1 for the first page, then 2, 3, ...
    :param has_more: whether the service announced another page
    :param meta: what the call told about itself
    """

    records: list[dict[str, Any]]
    number: int
    has_more: bool
    meta: CallMeta


@dataclass(frozen=True)
class BatchSubmission:
    """A batch export the service accepted.

    :param batch_token: opaque handle of the export; a secret, seal it before storing it
    :param daily_remaining: batch calls left today, when the reply says so
    :param request_id: the service's request id
    :param echo: the ``logs`` field of the reply, which seems to echo the query
    """

    batch_token: str = field(repr=False)
    daily_remaining: int | None
    request_id: str | None
    echo: Any = None


@dataclass(frozen=True)
class BatchFile:
    """One result file of a batch export.

    :param index: position of the file in the service's list, from 0
    :param time_range: the part of the window the file covers, as the service describes it
    :param ready: whether the service marked the file ready
    :param status: the service's status word, lower-cased, e.g. ``completed``
    :param url: presigned download URL; its query string is a credential
    :param expires_at: when the URL stops working (UTC), read from its query string
    :param record_count: number of records in the file, when the service states it
    """

    index: int
    time_range: Any
    ready: bool
    status: str | None
    url: str | None = field(repr=False)
    expires_at: datetime | None
    record_count: int | None = None


@dataclass(frozen=True)
class BatchStatus:
    """The state of a batch export.

    :param files: the result files in the service's order
    :param meta: what the call told about itself
    :param ready: every file is ready and completed (and there is at least one)
    :param failed: at least one file reports a failure, error or expiry
    """

    files: tuple[BatchFile, ...]
    meta: CallMeta
    ready: bool
    failed: bool


@dataclass(frozen=True)
class ApiReply:
    """A decoded reply of a route that has no dedicated type.

    :param payload: the payload, unwrapped from the V2 envelope if there was one
    :param meta: what the call told about itself
    """

    payload: Any
    meta: CallMeta


@dataclass(frozen=True)
class QuotaStatus:
    """The daily quota of a route as last observed.

    :param route: path the count belongs to
    :param remaining: calls left until the reset
    :param observed_at: when the count was read (UTC)
    :param resets_at: next 00:00 UTC, when the service resets the count
    """

    route: str
    remaining: int
    observed_at: datetime
    resets_at: datetime
