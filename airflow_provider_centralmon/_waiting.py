"""Durations, deadlines and poll intervals shared by the waiting tasks and their triggers."""

from __future__ import annotations

from datetime import timedelta

from airflow_provider_centralmon.exceptions import InvalidParameterError

#: Polls of a trigger that may fail in a row (after the hook's own retries) before it gives up.
DEFAULT_MAX_CONSECUTIVE_FAILURES = 3


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
    return seconds


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
