"""Trigger that waits, in the triggerer, until every file of a batch export is ready."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from airflow_provider_centralmon import _trigger_events as events
from airflow_provider_centralmon._batch_state import (
    BatchPhase,
    ReadyConfirmation,
    batch_phase,
    describe_progress,
    failure_text,
    file_summaries,
)
from airflow_provider_centralmon._compat import BaseTrigger, TriggerEvent
from airflow_provider_centralmon._waiting import (
    DEFAULT_MAX_CONSECUTIVE_FAILURES,
    FailedPolls,
    as_deadline,
    as_positive_count,
    as_seconds,
)
from airflow_provider_centralmon.exceptions import (
    CentralMonitoringError,
    InvalidParameterError,
    ServiceError,
)
from airflow_provider_centralmon.hooks._types import BatchStatus
from airflow_provider_centralmon.hooks.centralmon_async import CentralMonitoringAsyncHook


class CentralMonitoringBatchTrigger(BaseTrigger):
    """Poll a batch export until every file is ready, it fails, or the deadline passes.

    The batch token travels sealed (see ``CentralMonitoringHook.seal``) and is unsealed in the
    triggerer with the same connection. The trigger shares the access token of the triggerer
    process with every other trigger and hook of the same client.

    Events (``status``): ``success`` with ``files`` (metadata of each file, never its URL)
    and ``polls``; ``failed`` when the service reports a failed or expired export;
    ``timeout`` after ``deadline``; ``error`` for a provider error, with its class name and
    message. A network or server failure that outlasts the hook's own retries is counted; the
    trigger gives up after ``max_consecutive_failures`` such polls in a row.

    :param batch_ref: the sealed batch token
    :param centralmon_conn_id: id of the ``centralmon`` connection that submitted the export
    :param poll_interval: seconds between two polls. Default 60.
    :param deadline: when to give up, in seconds since the epoch (UTC)
    :param max_consecutive_failures: failed polls in a row before giving up. Default 3.
    :param confirm_file_list: count a ready answer only when the next poll lists the same
        files, in case the service lists files as they are produced. Default False.
    :param resume_with: JSON data returned unchanged as ``resume_with`` in every event, for
        the task to resume with; it must hold no secret in clear. Default none.
    """

    def __init__(
        self,
        *,
        batch_ref: str,
        centralmon_conn_id: str,
        deadline: float,
        poll_interval: float = 60.0,
        max_consecutive_failures: int = DEFAULT_MAX_CONSECUTIVE_FAILURES,
        confirm_file_list: bool = False,
        resume_with: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # unannotated in Airflow
        if not isinstance(batch_ref, str) or not batch_ref:
            raise InvalidParameterError("batch_ref must be a sealed batch token")
        self.batch_ref = batch_ref
        self.centralmon_conn_id = centralmon_conn_id
        self.deadline = as_deadline(deadline)
        self.poll_interval = as_seconds(poll_interval, "poll_interval")
        self.max_consecutive_failures = as_positive_count(
            max_consecutive_failures, "max_consecutive_failures"
        )
        if not isinstance(confirm_file_list, bool):
            raise InvalidParameterError("confirm_file_list must be True or False")
        self.confirm_file_list = confirm_file_list
        self.resume_with = None if resume_with is None else dict(resume_with)

    def __repr__(self) -> str:
        # The sealed token is left out: it is harmless, but long and of no use in a log.
        return f"{type(self).__name__}(centralmon_conn_id={self.centralmon_conn_id!r})"

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the class path and the JSON-ready arguments that rebuild this trigger."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "batch_ref": self.batch_ref,
                "centralmon_conn_id": self.centralmon_conn_id,
                "deadline": self.deadline,
                "poll_interval": self.poll_interval,
                "max_consecutive_failures": self.max_consecutive_failures,
                "confirm_file_list": self.confirm_file_list,
                "resume_with": self.resume_with,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until the export is ready, failed, timed out or polling keeps failing."""
        hook = self._new_hook()
        try:
            batch_token = await hook.aunseal(self.batch_ref)
        except CentralMonitoringError as error:
            yield self._event(events.error_event(error))
            return

        polls = 0
        failed_polls = FailedPolls(self.max_consecutive_failures, self.log)
        confirmation = ReadyConfirmation(self.confirm_file_list)
        while True:
            polls += 1
            try:
                status = await hook.get_batch_files(batch_token)
            except ServiceError as error:
                if failed_polls.give_up(error, polls):
                    yield self._event(events.error_event(error))
                    return
            except CentralMonitoringError as error:
                yield self._event(events.error_event(error))
                return
            else:
                failed_polls.reset()
                event = self._event_for(status, polls, confirmation.accept(status))
                if event is not None:
                    yield self._event(event)
                    return

            remaining_s = self.deadline - time.time()
            if remaining_s <= 0:
                yield self._event(
                    {
                        "status": events.TIMEOUT,
                        "message": f"the batch export was not ready after {polls} polls",
                        "polls": polls,
                    }
                )
                return
            await self._pause(min(self.poll_interval, remaining_s))

    def _event_for(
        self, status: BatchStatus, polls: int, downloadable: bool
    ) -> dict[str, Any] | None:
        phase = batch_phase(status)
        if downloadable:
            self.log.info("Batch export ready after %d polls: %s", polls, describe_progress(status))
            return {"status": events.SUCCESS, "files": file_summaries(status), "polls": polls}
        if phase is BatchPhase.FAILED:
            return {
                "status": events.FAILED,
                "message": f"the service reports the batch export failed ({failure_text(status)})",
                "files": file_summaries(status),
                "polls": polls,
            }
        progress = describe_progress(status)
        if phase is BatchPhase.READY:
            progress += "; checking once more that no more files appear"
        self.log.info("Poll %d: %s; next poll in %g s", polls, progress, self.poll_interval)
        return None

    def _event(self, payload: Mapping[str, Any]) -> TriggerEvent:
        return events.trigger_event({**payload, "resume_with": self.resume_with})

    def _new_hook(self) -> CentralMonitoringAsyncHook:
        """Return the hook of one run; tests replace it to skip the hook's retry delays."""
        return CentralMonitoringAsyncHook(self.centralmon_conn_id)

    async def _pause(self, seconds: float) -> None:
        """Wait between two polls; tests replace it to step through the polls."""
        await asyncio.sleep(seconds)
