"""Which failures are worth another try, and how long to wait before it. No I/O.

Both hooks drive the same :class:`RetryBudget`; only the sending and the sleeping differ.

Retried: network failures and timeouts (translated to :class:`ServiceError` by the hooks) and
the 5xx statuses a gateway or an overloaded service answers. Never retried: 400 and 403
(the same request fails the same way), 401 (handled by refreshing the token, not here) and,
on the API, 429: the daily quota resets at 00:00 UTC, so waiting seconds cannot help. The
token endpoint's 429 is a short-term rate limit and is retried.

Malformed JSON in a successful reply is not retried either: the call may already have moved
a scroll cursor or started a batch export, so repeating it could skip a page or spend quota
twice. It raises :class:`ProtocolError` at once.

Limitation: a POST that failed with a 5xx or a dropped connection is sent again even though
the service may have acted on it: a batch submission can then start a second export (one
more unit of batch quota), and a scroll continuation can find its cursor already moved on
(:class:`~airflow_provider_centralmon.exceptions.ScrollExpiredError`). The service offers no
idempotency key to prevent this.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

from airflow_provider_centralmon.exceptions import ServiceError

# 501 and 505 say the service will never handle the request; the rest of 5xx are transient.
API_RETRY_STATUSES = frozenset({500, 502, 503, 504, 507, 508, 509, 520, 521, 522, 523, 524})
TOKEN_RETRY_STATUSES = API_RETRY_STATUSES | {429}


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a call.

    :param max_retries: retries after the first try (0 disables retrying); default 4
    :param base_delay_s: delay before the first retry, doubled for each further one; default 1
    :param max_delay_s: longest backoff delay in seconds; default 30
    :param max_retry_after_s: longest wait honoured from a ``Retry-After`` header, seconds;
        default 120
    """

    max_retries: int = 4
    base_delay_s: float = 1.0
    max_delay_s: float = 30.0
    max_retry_after_s: float = 120.0

    def backoff_s(self, retry_number: int, rng: Callable[[], float] = random.random) -> float:
        """Return the jittered delay before retry number ``retry_number`` (1-based)."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2.0 ** (retry_number - 1))
        # Half fixed, half random: keeps a floor under the wait while spreading out clients
        # that failed at the same moment.
        return ceiling / 2 + rng() * ceiling / 2


@dataclass(frozen=True)
class HttpOutcome:
    """The part of an HTTP reply the retry decision needs.

    :param status: HTTP status
    :param headers: reply headers, looked up case-insensitively by the caller's mapping
    """

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass
class RetryBudget:
    """The retries left for one logical call.

    :param policy: the retry policy
    :param retry_statuses: HTTP statuses that are retried
    :param now: clock returning epoch seconds, to read a ``Retry-After`` date
    :param rng: random source in [0, 1), for the jitter
    """

    policy: RetryPolicy
    retry_statuses: frozenset[int]
    now: Callable[[], float]
    rng: Callable[[], float] = random.random
    retries_done: int = 0

    def judge(self, outcome: HttpOutcome | ServiceError) -> float | None:
        """Return the delay in seconds before trying again, or None if the outcome is final."""
        if isinstance(outcome, HttpOutcome):
            if outcome.status not in self.retry_statuses:
                return None
            retry_after_s = parse_retry_after(outcome.headers.get("retry-after"), self.now())
        elif outcome.retryable:
            retry_after_s = None
        else:
            return None

        if self.retries_done >= self.policy.max_retries:
            return None
        self.retries_done += 1
        if retry_after_s is not None:
            return min(retry_after_s, self.policy.max_retry_after_s)
        return self.policy.backoff_s(self.retries_done, self.rng)

    @property
    def tries_allowed(self) -> int:
        """Return the total number of tries, for "try n of m" log lines."""
        return self.policy.max_retries + 1


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Read a ``Retry-After`` header: delta seconds or an HTTP date (RFC 9110, 10.2.3)."""
    if not value:
        return None
    text = value.strip()
    # ASCII only: str.isdigit() also accepts digits such as "²" that float() refuses.
    if text.isascii() and text.isdigit():
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        return None
    return max(0.0, moment.timestamp() - now)
