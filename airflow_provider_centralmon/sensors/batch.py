"""Sensor that waits until every file of a batch export is ready."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_centralmon import _trigger_events as events
from airflow_provider_centralmon._batch_state import (
    BatchPhase,
    batch_phase,
    describe_progress,
    failure_text,
    file_summaries,
)
from airflow_provider_centralmon._compat import (
    AirflowSensorTimeout,
    BaseSensorOperator,
    PokeReturnValue,
    conf,
)
from airflow_provider_centralmon._log_search import DEFAULT_CONN_ID
from airflow_provider_centralmon._query import is_templated
from airflow_provider_centralmon._waiting import (
    DEFAULT_MAX_CONSECUTIVE_FAILURES,
    as_positive_count,
    check_poke_timing,
)
from airflow_provider_centralmon.exceptions import BatchError, InvalidParameterError
from airflow_provider_centralmon.hooks._sealing import SEALED_PREFIX
from airflow_provider_centralmon.hooks.centralmon import CentralMonitoringHook

if TYPE_CHECKING:
    from airflow_provider_centralmon._compat import Context

# The deferral's own timeout only backs up the trigger's deadline, which reports first.
_DEFERRAL_GRACE_S = 300.0


class CentralMonitoringBatchSensor(BaseSensorOperator):
    """Wait until every file of a batch export is ready to download.

    The export is named by its sealed token, as ``CentralMonitoringBatchExportOperator``
    pushes it to XCom under the key ``batch_ref``, e.g.
    ``batch_ref="{{ ti.xcom_pull(task_ids='export', key='batch_ref') }}"``. The sensor
    returns (XCom) ``{"files": [...]}``, the metadata of each file: ``index``,
    ``time_range``, ``status``, ``ready``, ``record_count`` and ``expires_at``; never a URL,
    which is a credential. A failed or expired export fails the task with ``BatchError``.

    Besides Airflow's sensor arguments (``poke_interval``, ``timeout``, ``mode``,
    ``soft_fail``, ...):

    :param batch_ref: the sealed batch token (templated)
    :param centralmon_conn_id: id of the ``centralmon`` connection that submitted the export
        (only it can unseal the token). Default ``centralmon_default``.
    :param deferrable: wait in the triggerer, freeing the worker. Default: Airflow's
        ``[operators] default_deferrable``.
    :param max_consecutive_failures: checks that may fail in a row (after the hook's own
        retries) in the triggerer before the task fails. Default 3.
    """

    template_fields: Sequence[str] = ("batch_ref",)
    ui_color = "#dbe9f6"

    def __init__(
        self,
        *,
        batch_ref: str,
        centralmon_conn_id: str = DEFAULT_CONN_ID,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        max_consecutive_failures: int = DEFAULT_MAX_CONSECUTIVE_FAILURES,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_poke_timing(self.poke_interval, None)
        _check_batch_ref(batch_ref, rendered=False)
        if not isinstance(deferrable, bool):
            raise InvalidParameterError(f"deferrable must be True or False, not {deferrable!r}")
        self.batch_ref = batch_ref
        self.centralmon_conn_id = centralmon_conn_id
        self.deferrable = deferrable
        self.max_consecutive_failures = as_positive_count(
            max_consecutive_failures, "max_consecutive_failures"
        )

    def execute(self, context: Context) -> Any:
        """Check once in the worker; then poke, or defer the waiting to the triggerer."""
        if not self.deferrable:
            return super().execute(context)
        first = self.poke(context)
        if first.is_done:
            return first.xcom_value

        # Imported here: DAG files that only declare the sensor need not load Airflow's triggers.
        from airflow_provider_centralmon.triggers.batch import CentralMonitoringBatchTrigger

        self.defer(
            trigger=CentralMonitoringBatchTrigger(
                batch_ref=self.batch_ref,
                centralmon_conn_id=self.centralmon_conn_id,
                deadline=time.time() + self.timeout,
                poll_interval=self.poke_interval,
                max_consecutive_failures=self.max_consecutive_failures,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout + self.poke_interval + _DEFERRAL_GRACE_S),
        )

    def poke(self, context: Context) -> PokeReturnValue:
        """Ask the service whether every file is ready; raise if the export failed."""
        _check_batch_ref(self.batch_ref, rendered=True)
        with CentralMonitoringHook(self.centralmon_conn_id) as hook:
            status = hook.get_batch_files(hook.unseal(self.batch_ref))
        phase = batch_phase(status)
        if phase is BatchPhase.FAILED:
            raise BatchError(
                f"the service reports the batch export failed ({failure_text(status)})",
                request_id=status.meta.request_id,
            )
        self.log.info("Batch export: %s", describe_progress(status))
        if phase is BatchPhase.READY:
            return PokeReturnValue(is_done=True, xcom_value={"files": file_summaries(status)})
        return PokeReturnValue(is_done=False)

    def execute_complete(self, context: Context, event: Mapping[str, Any] | None = None) -> Any:
        """Finish after the trigger: return the files' metadata, or raise what it reported."""
        status = events.event_status(
            event,
            {events.SUCCESS, events.FAILED, events.TIMEOUT, events.ERROR},
            where=f"Sensor {self.task_id}",
        )
        assert event is not None  # checked by event_status
        if status == events.ERROR:
            events.raise_error_event(event)
        if status == events.FAILED:
            raise BatchError(str(event.get("message")))
        if status == events.TIMEOUT:
            raise AirflowSensorTimeout(
                f"Sensor has timed out after {self.timeout:g} s: {event.get('message')}"
            )
        files = event.get("files")
        if not isinstance(files, list):
            raise BatchError("the trigger reported a ready export without its files")
        return {"files": files}


def _check_batch_ref(value: object, *, rendered: bool) -> None:
    if not rendered and (is_templated(value) or not isinstance(value, str)):
        # A template or an XComArg: known once the task runs.
        return
    if not isinstance(value, str) or not value.startswith(SEALED_PREFIX):
        raise InvalidParameterError(
            "batch_ref must be a sealed batch token as CentralMonitoringBatchExportOperator "
            "pushes it to XCom (key 'batch_ref'), e.g. "
            "\"{{ ti.xcom_pull(task_ids='export', key='batch_ref') }}\""
        )
