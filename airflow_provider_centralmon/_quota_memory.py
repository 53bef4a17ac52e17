"""The daily quota each route had left when this process last called it.

A hook remembers the quota of its own latest reply only; tasks that want to stop before
spending below a floor need what any earlier hook of the process saw. Readings are kept per
service, client id and route, since the service counts quotas per client, not per connection.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from airflow_provider_centralmon.exceptions import QuotaFloorError
from airflow_provider_centralmon.hooks.centralmon import CentralMonitoringHook, QuotaStatus

_QuotaKey = tuple[str, str, str]
_quota_seen: dict[_QuotaKey, QuotaStatus] = {}
_quota_guard = threading.Lock()


def _quota_key(hook: CentralMonitoringHook, route: str) -> _QuotaKey:
    # Quotas count per client id and service, not per connection id or hook instance.
    settings = hook.settings
    return (settings.base_url, settings.client_id, route)


def remember_quota(hook: CentralMonitoringHook) -> None:
    """Record the hook's latest quota reading, so later tasks of this process can see it."""
    status = hook.last_quota
    if status is None:
        return
    with _quota_guard:
        _quota_seen[_quota_key(hook, status.route)] = status


def last_known_quota(
    hook: CentralMonitoringHook, operation: str, now: datetime
) -> QuotaStatus | None:
    """Return the latest quota reading of an operation's route in this process, if still valid.

    A reading taken before the last daily reset no longer says anything and is ignored.

    :param hook: a hook of the connection in use
    :param operation: ``scroll``, ``batch``, ``batch_urls`` or ``query``
    :param now: the current instant
    """
    route = hook.settings.route(operation)
    candidates = [hook.last_quota] if hook.last_quota and hook.last_quota.route == route else []
    with _quota_guard:
        seen = _quota_seen.get(_quota_key(hook, route))
    if seen is not None:
        candidates.append(seen)
    valid = [status for status in candidates if status.resets_at > now]
    return max(valid, key=lambda status: status.observed_at, default=None)


def check_quota_floor(
    hook: CentralMonitoringHook, operation: str, floor: int | None, now: datetime
) -> None:
    """Raise :class:`QuotaFloorError` if the route's last known quota is below ``floor``.

    Nothing is known before the first call of the process to the route: the check passes.
    Limitation: readings live in this process only; a task that runs in a fresh process
    (as Airflow's workers start them) knows only what the same process saw earlier.

    :param hook: a hook of the connection about to be used
    :param operation: ``scroll``, ``batch``, ``batch_urls`` or ``query``
    :param floor: the smallest remaining count the task may start with; None: no floor
    :param now: the current instant
    """
    if floor is None:
        return
    status = last_known_quota(hook, operation, now)
    if status is None or status.remaining >= floor:
        return
    raise QuotaFloorError(
        f"{status.route} had {status.remaining} calls left today when last seen "
        f"({_iso(status.observed_at)}), below min_daily_remaining={floor}; the quota "
        f"resets at {_iso(status.resets_at)}. Lower min_daily_remaining or run later",
        remaining=status.remaining,
        resets_at=status.resets_at,
        http_status=None,
    )


def forget_quotas() -> None:
    """Forget every quota reading of this process (for tests)."""
    with _quota_guard:
        _quota_seen.clear()


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
