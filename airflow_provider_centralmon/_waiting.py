"""Durations, deadlines and poll intervals shared by the waiting tasks and their triggers."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any, Protocol

from airflow_provider_centralmon.exceptions import InvalidParameterError, ServiceError

#: Polls of a trigger that may fail in a row (after the hook's own retries) before it gives up.
DEFAULT_MAX_CONSECUTIVE_FAILURES = 3
#: Longest wait, poll interval or timeout accepted, seconds (30 days). Longer ones are typing
#: slips (milliseconds for seconds), and past a point overflow a deferral's timedelta.
MAX_WAIT_S = 30 * 24 * 3600.0


def as_seconds(value: object, name: str, *, allow_zero: bool = False) -> float:
    """Return a duration given as a timedelta or a number of seconds, checked.

    :param value: the parameter's value
    :param name: the parameter's name, quoted in the error message
    :param allow_zero: accept a zero duration
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise InvalidParameterError(
            f"{name} must be a timedelta or a number of seconds, not {type(value).__name__}"
        )
    if seconds < 0 or (seconds == 0 and not allow_zero) or seconds != seconds:
        bound = "0 or more" if allow_zero else "more than 0"
        raise InvalidParameterError(f"{name} must be {bound} seconds, got {seconds:g}")
    if math.isinf(seconds):
        raise InvalidParameterError(f"{name} must be a finite number of seconds")
    if seconds > MAX_WAIT_S:
        raise InvalidParameterError(
            f"{name} must be at most {MAX_WAIT_S:g} seconds (30 days), got {seconds:g}"
        )
    return seconds


def as_deadline(value: object) -> float:
    """Return a deadline in seconds since the epoch, or raise :class:`InvalidParameterError`."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidParameterError(
            f"deadline must be a finite time in seconds since the epoch, not {value!r}"
        )
    return float(value)


def check_poke_timing(poke_interval: object, max_wait: object) -> None:
    """Refuse a sensor's intervals that a deferral could not keep, before any poke is spent.

    Each poke calls the service, so a zero interval is refused in every mode.

    :param poke_interval: the sensor's ``poke_interval`` once Airflow has read it
    :param max_wait: the sensor's ``max_wait`` (None when unset)
    """
    as_seconds(poke_interval, "poke_interval")
    if max_wait is not None:
        as_seconds(max_wait, "max_wait")


def as_positive_count(value: object, name: str) -> int:
    """Return a whole number of 1 or more, or raise :class:`InvalidParameterError`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidParameterError(f"{name} must be a whole number of 1 or more, not {value!r}")
    return value


def next_interval(
    poll_interval_s: float,
    polls_done: int,
    *,
    exponential_backoff: bool = False,
    max_wait_s: float | None = None,
) -> float:
    """Return how long to wait before the next poll.

    With backoff the wait doubles after every poll, starting at ``poll_interval_s``, and never
    exceeds ``max_wait_s``. Unlike Airflow's sensor backoff it has no jitter: a trigger's
    polls are few and not synchronised with other tasks.

    :param poll_interval_s: the base interval, seconds
    :param polls_done: polls made so far (1 after the first)
    :param exponential_backoff: double the wait after every poll
    :param max_wait_s: the longest wait, seconds; default none
    """
    wait = poll_interval_s
    if exponential_backoff:
        # Capped exponent: the doubling passes any sensible max_wait long before this.
        wait = poll_interval_s * 2 ** min(max(polls_done - 1, 0), 40)
    if max_wait_s is not None:
        wait = min(wait, max_wait_s)
    return wait


class _Log(Protocol):
    """The part of a logger the poll counting writes to: Airflow's or the standard one."""

    def warning(self, event: Any, *args: Any, **kw: Any) -> Any: ...

    def error(self, event: Any, *args: Any, **kw: Any) -> Any: ...


class FailedPolls:
    """Count the polls of a trigger that failed in a row, and tell when to give up.

    Only failures that outlasted the hook's own retries are counted: a network or server
    failure. A successful poll starts the count again.

    :param allowed: failed polls in a row that end the trigger
    :param log: where each failure is reported: the trigger's own logger
    """

    def __init__(self, allowed: int, log: _Log) -> None:
        self.allowed = allowed
        self.in_a_row = 0
        self._log = log

    def give_up(self, error: ServiceError, poll: int) -> bool:
        """Count a failed poll; return whether it was the last one allowed."""
        self.in_a_row += 1
        if self.in_a_row >= self.allowed:
            self._log.error("Giving up after %d failed polls in a row", self.in_a_row)
            return True

        self._log.warning(
            "Poll %d failed (%s); %d of %d failures in a row allowed",
            poll,
            error,
            self.in_a_row,
            self.allowed,
        )
        return False

    def reset(self) -> None:
        """Note a poll that worked."""
        self.in_a_row = 0
