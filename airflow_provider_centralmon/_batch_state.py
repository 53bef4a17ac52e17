"""What a batch export's state means, for the operator, the batch sensor and the trigger.

The hooks report the service's answer as a :class:`BatchStatus`; this module turns it into one
of three phases and into file metadata that is safe to log, to return and to put into a
trigger event: index, time range, status, record count and URL expiry, never the URL. It also
holds the wait of a task that polls in its worker instead of deferring.
"""

from __future__ import annotations

import enum
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from airflow_provider_centralmon.exceptions import BatchError
from airflow_provider_centralmon.hooks._types import BatchFile, BatchStatus


class BatchPhase(enum.Enum):
    """Where a batch export stands."""

    #: The service is still preparing one or more files.
    PENDING = "pending"
    #: Every file is ready and completed: it can be downloaded.
    READY = "ready"
    #: A file reports a failure, an error or an expiry: the export will not become ready.
    FAILED = "failed"


def batch_phase(status: BatchStatus) -> BatchPhase:
    """Return the phase of a batch export from the urls route's answer."""
    if status.failed:
        return BatchPhase.FAILED
    if status.ready:
        return BatchPhase.READY
    return BatchPhase.PENDING


def file_summary(file: BatchFile) -> dict[str, Any]:
    """Return what may be shown of one result file: everything but its URL.

    :param file: a file of a batch status
    """
    return {
        "index": file.index,
        "time_range": _json_value(file.time_range),
        "status": file.status,
        "ready": file.ready,
        "record_count": file.record_count,
        "expires_at": None if file.expires_at is None else _iso(file.expires_at),
    }


def file_summaries(status: BatchStatus) -> list[dict[str, Any]]:
    """Return :func:`file_summary` of every file, in the service's order."""
    return [file_summary(file) for file in status.files]


def describe_progress(status: BatchStatus) -> str:
    """Return a short account of the files' readiness, e.g. ``2 of 3 files ready``."""
    files = status.files
    if not files:
        return "no file listed yet"
    ready = sum(1 for file in files if file.ready and file.status == "completed" and file.url)
    states = sorted({file.status or "unknown" for file in files})
    return f"{ready} of {len(files)} files ready (status: {', '.join(states)})"


def failure_text(status: BatchStatus) -> str:
    """Return which files failed and how, for the error of a failed export."""
    failed = [file for file in status.files if file.status not in (None, "completed")]
    listed = ", ".join(f"file {file.index}: {file.status}" for file in failed[:10])
    more = f" and {len(failed) - 10} more" if len(failed) > 10 else ""
    return f"{listed}{more}" or "no file detail"


def file_list_key(status: BatchStatus) -> str:
    """Return what identifies the listed files, URLs aside (they are new on every answer)."""
    listed = [
        [file.index, _json_value(file.time_range), file.record_count] for file in status.files
    ]
    return json.dumps(listed, sort_keys=True, default=str)


class ReadyConfirmation:
    """Tell when a ready answer can be trusted to list every file of the export.

    The service does not say whether the urls route lists files as they are produced. When
    asked (``confirm``), a ready answer counts only once the next check, one poll interval
    later, lists the same files; a list that changed becomes the one to confirm.

    :param confirm: ask for that second, matching answer; otherwise any ready answer counts
    """

    def __init__(self, confirm: bool) -> None:
        self.confirm = confirm
        self._candidate: str | None = None

    def accept(self, status: BatchStatus) -> bool:
        """Note a check's answer; return whether the export may now be downloaded."""
        if batch_phase(status) is not BatchPhase.READY:
            self._candidate = None
            return False
        if not self.confirm:
            return True
        key = file_list_key(status)
        confirmed = key == self._candidate
        self._candidate = key
        return confirmed


def wait_until_ready(
    check: Callable[[], BatchStatus],
    *,
    timeout_s: float,
    poll_interval_s: float,
    log: Any,
    confirm: bool = False,
    first: BatchStatus | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> BatchStatus:
    """Check an export until it is ready, in the calling thread; return its ready status.

    :param check: asks the service for the export's status
    :param timeout_s: how long to wait at most, seconds
    :param poll_interval_s: time between two checks, seconds
    :param log: where each check is logged
    :param confirm: count a ready answer only when the next check lists the same files
        (see :class:`ReadyConfirmation`)
    :param first: an answer already at hand, taken as the first check's
    :param sleep: waits between checks; default :func:`time.sleep`
    :param clock: monotonic seconds; default :func:`time.monotonic`
    :raises BatchError: the export failed, or was not ready in time
    """
    deadline = clock() + timeout_s
    confirmation = ReadyConfirmation(confirm)
    checks = 0
    while True:
        checks += 1
        status = first if first is not None and checks == 1 else check()
        phase = batch_phase(status)
        if confirmation.accept(status):
            log.info("Batch export ready after %d checks: %s", checks, describe_progress(status))
            return status
        if phase is BatchPhase.FAILED:
            raise BatchError(
                f"the service reports the batch export failed ({failure_text(status)}); "
                "a retry submits a new export",
                request_id=status.meta.request_id,
            )
        left_s = deadline - clock()
        if left_s <= 0:
            raise BatchError(
                f"the batch export was not ready within batch_timeout={timeout_s:g} s "
                f"({checks} checks, {describe_progress(status)}); a retry reconnects to it"
            )
        wait_s = min(poll_interval_s, left_s)
        progress = describe_progress(status)
        if phase is BatchPhase.READY:
            progress += "; checking once more that no more files appear"
        log.info("Check %d: %s; next check in %g s", checks, progress, wait_s)
        sleep(wait_s)


def _json_value(value: Any) -> Any:
    # The service does not document the type of a file's time_range; keep JSON as is.
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | dict):
        return value
    return str(value)


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
