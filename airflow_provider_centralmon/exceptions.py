"""Errors raised by the Central Monitoring provider.

Every error derives from :class:`CentralMonitoringError`, so a DAG can catch the whole family
in one ``except``. The tree::

    CentralMonitoringError
    ├── InvalidParameterError        bad operator, sensor or connection parameter (also ValueError)
    │   └── InvalidWindowError       the time window cannot be exported as asked
    ├── AuthenticationError          token endpoint refused the credentials, or a 401 twice
    ├── PermissionDeniedError        403: the token lacks the route or scope
    ├── BadRequestError              400: the service rejected the request body
    ├── QuotaExhaustedError          429: the daily quota of a route is used up
    │   └── QuotaFloorError          the last known quota is below the task's floor
    ├── ServiceError                 5xx, gateway pages, network failures (retryable)
    │   ├── ScrollExpiredError       a scroll continuation found its cursor gone or moved on
    │   └── StaleTimeRangeError      a first reply so late that ``now-<N>m`` may miss the start
    ├── ProtocolError                a reply that cannot be understood
    │   ├── RecordTimeError          a record has no readable time and the policy is "fail"
    │   └── TruncatedFileError       a batch file ended before its JSON array did (retryable)
    └── BatchError                   a batch export failed, expired or never became ready
        └── PresignedUrlExpiredError a download URL expired: ask for fresh URLs

``retryable`` says whether trying the same call again later can succeed without a change of
configuration. Quota errors are also Airflow's ``AirflowFailException``: the quota resets at
00:00 UTC, so Airflow fails the task at once instead of spending its retries (and one more
call each) before then. No message or attribute ever carries a secret: tokens, the client secret,
batch tokens, scroll ids and presigned URL signatures are left out where the error is built.
"""

from __future__ import annotations

from datetime import datetime

from airflow_provider_centralmon._compat import AirflowException, AirflowFailException


class CentralMonitoringError(AirflowException):
    """Root of every error this provider raises.

    :param message: one line a user can act on; never holds a secret
    :param http_status: HTTP status of the reply that caused the error, if any (Airflow 3
        reserves ``status_code`` on its exceptions for its own use)
    :param request_id: the service's request id, which its support asks for
    """

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.request_id = request_id

    def __str__(self) -> str:
        if self.request_id:
            return f"{self.message} (request id {self.request_id})"
        return self.message

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only fields would be lost by the default pickling of exceptions, which
        # replays only ``args``; executors pickle errors across process boundaries.
        return (_rebuild, (type(self), self.message, dict(self.__dict__)))


def _rebuild(
    cls: type[CentralMonitoringError], message: str, state: dict[str, object]
) -> CentralMonitoringError:
    error = cls.__new__(cls)
    CentralMonitoringError.__init__(error, message)
    error.__dict__.update(state)
    return error


class InvalidParameterError(CentralMonitoringError, ValueError):
    """A parameter of an operator, sensor, trigger or connection is not usable as given."""


class InvalidWindowError(InvalidParameterError):
    """The requested time window is empty, reversed, naive or reaches into the future."""


class AuthenticationError(CentralMonitoringError):
    """The credentials were refused, or the service rejected a freshly issued token.

    :param oauth_error: the OAuth2 ``error`` code from the token endpoint, e.g. ``invalid_client``
    """

    def __init__(
        self,
        message: str,
        *,
        oauth_error: str | None = None,
        http_status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, http_status=http_status, request_id=request_id)
        self.oauth_error = oauth_error


class PermissionDeniedError(CentralMonitoringError):
    """The token is valid but does not grant this route or scope (HTTP 403)."""


class BadRequestError(CentralMonitoringError):
    """The service rejected the request (HTTP 400).

    :param detail: the service's own explanation, as sent
    """

    def __init__(
        self,
        message: str,
        *,
        detail: str | None = None,
        http_status: int | None = 400,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, http_status=http_status, request_id=request_id)
        self.detail = detail


# AirflowFailException is a mixin here: the tree stays rooted in CentralMonitoringError.
class QuotaExhaustedError(CentralMonitoringError, AirflowFailException):
    """The daily quota of a route is used up (HTTP 429); it resets at 00:00 UTC.

    Retrying before the reset only spends time, so this error is not retryable, and as an
    ``AirflowFailException`` it fails the task without Airflow's retries.

    :param remaining: the last remaining count the service reported, if any
    :param resets_at: when the quota resets (timezone-aware, UTC)
    """

    def __init__(
        self,
        message: str,
        *,
        remaining: int | None = None,
        resets_at: datetime | None = None,
        http_status: int | None = 429,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, http_status=http_status, request_id=request_id)
        self.remaining = remaining
        self.resets_at = resets_at


class QuotaFloorError(QuotaExhaustedError):
    """The task refused to spend quota: the last known remaining count is below its floor."""


class ServiceError(CentralMonitoringError):
    """The service or the network failed (5xx, gateway page, timeout, dropped connection)."""

    retryable = True


class ScrollExpiredError(ServiceError):
    """The service no longer knows the cursor of a scroll continuation (HTTP 404).

    The cursor expired, or it moved on when a reply was lost and the call was sent again. A
    scroll cannot be resumed: the search has to start over, which a new try of the task (or
    the next poll of a sensor) does.
    """


class StaleTimeRangeError(ServiceError):
    """The first scroll reply came so late that a relative lower bound may have missed ``start``.

    The service resolves ``now-<N>m`` when it reads the request; a reply that arrives more
    than the margin after the bound was computed means the service may have read it too late
    to reach back to the window's start. Records may be missing, so the search stops; a new
    try computes a new bound.
    """


class ProtocolError(CentralMonitoringError):
    """A reply could not be understood: malformed JSON, missing fields, a cursor that never ends."""


class RecordTimeError(ProtocolError):
    """A record carries no readable time in its time field, and untimed records must fail.

    :param field: the time field that was read, e.g. ``@timestamp``
    :param record_id: the record's ``_id``, when it has one
    """

    def __init__(
        self,
        message: str,
        *,
        field: str,
        record_id: str | None = None,
        http_status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, http_status=http_status, request_id=request_id)
        self.field = field
        self.record_id = record_id


class TruncatedFileError(ProtocolError):
    """A batch file ended before its JSON array did, as when a connection closes early.

    Unlike other unreadable content, reading the same file again may succeed.
    """

    retryable = True


class BatchError(CentralMonitoringError):
    """A batch export failed, expired, or did not become ready in time."""


class PresignedUrlExpiredError(BatchError):
    """A presigned download URL has expired; ask the urls route again for fresh ones.

    :param expired_at: when the URL stopped working (UTC), if its query string says
    :param http_status: the storage's status: 403, or 400 when the credentials that signed
        the URL expired (S3's ``ExpiredToken``)
    """

    def __init__(
        self, message: str, *, expired_at: datetime | None = None, http_status: int = 403
    ) -> None:
        super().__init__(message, http_status=http_status)
        self.expired_at = expired_at
