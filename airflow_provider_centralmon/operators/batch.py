"""Export a window's logs to object storage through the service's batch export."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_centralmon import _trigger_events as events
from airflow_provider_centralmon._batch_download import (
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_URL_REFRESHES,
    BatchDownload,
    Delivery,
)
from airflow_provider_centralmon._batch_resume import (
    BatchJob,
    JobMarker,
    export_key,
    task_identity,
)
from airflow_provider_centralmon._batch_state import (
    BatchPhase,
    batch_phase,
    describe_progress,
    failure_text,
    wait_until_ready,
)
from airflow_provider_centralmon._compat import (
    AIRFLOW_V_3_3_PLUS,
    BaseOperator,
    ResumableJobMixin,
    conf,
)
from airflow_provider_centralmon._log_search import (
    SEARCH_TEMPLATE_FIELDS,
    LogSearchMixin,
    SearchPlan,
)
from airflow_provider_centralmon._output import ExportWriter, OutputLayout, export_directory
from airflow_provider_centralmon._quota_memory import remember_quota
from airflow_provider_centralmon._records import unwrap_record
from airflow_provider_centralmon._storage_export import STORAGE_TEMPLATE_FIELDS, StorageExportMixin
from airflow_provider_centralmon._waiting import (
    DEFAULT_MAX_CONSECUTIVE_FAILURES,
    as_positive_count,
    as_seconds,
)
from airflow_provider_centralmon._window import SendTimeRange
from airflow_provider_centralmon.exceptions import (
    BadRequestError,
    BatchError,
    InvalidParameterError,
)
from airflow_provider_centralmon.hooks.centralmon import BatchStatus, CentralMonitoringHook

if TYPE_CHECKING:
    from airflow_provider_centralmon._compat import Context

#: XCom key under which the sealed batch token is pushed as soon as the service accepts it.
BATCH_REF_XCOM_KEY = "batch_ref"
DEFAULT_POLL_INTERVAL = timedelta(seconds=60)
DEFAULT_BATCH_TIMEOUT = timedelta(hours=6)
# The deferral's own timeout only backs up the trigger's deadline, which reports first.
_DEFERRAL_GRACE_S = 300.0
# Statuses of an earlier try's export, as get_job_status reports them.
_PENDING, _READY = BatchPhase.PENDING.value, BatchPhase.READY.value
# Answers of the urls route to an earlier try's token that mean the service dropped the export.
_GONE_STATUSES = frozenset({404, 410})


class CentralMonitoringBatchExportOperator(
    LogSearchMixin, StorageExportMixin, ResumableJobMixin, BaseOperator
):
    """Export a window's logs to object storage through the service's batch export.

    The export is submitted from the worker; the task then waits until every result file is
    ready (deferred to the triggerer when ``deferrable``, polling in the worker otherwise),
    downloads the files in parallel and publishes them like
    ``CentralMonitoringLogsToStorageOperator``: same layout, same JSON Lines parts, manifest
    written last, same Asset outlet, records trimmed to the window. The task's return value
    (XCom) is the manifest plus ``path`` and ``run``.

    As soon as the service accepts the export, its sealed token is pushed to XCom under the
    key ``batch_ref`` (for ``CentralMonitoringBatchSensor``) and kept for retries: in
    Airflow's task state store on Airflow 3.3 and later (``ResumableJobMixin``), in a
    ``_batch_job.json`` marker in the export's directory on older versions. A retry then
    reconnects to that export instead of submitting (and paying for) a new one, as long as
    the service still lists it; an export that failed, expired or was submitted for another
    query or window is submitted anew, and the log says so. The record is removed once the
    export is published. Limitation: before Airflow 3.3, an export of a raw ``time_range``
    with the ``partitioned`` layout cannot be resumed, since its directory is named after the
    request time.

    Takes every search parameter of ``LogSearchMixin`` (``application``, ``domain``,
    ``filters``, ``start``/``end`` or ``time_range``, ``timestamp_field``, ...,
    ``centralmon_conn_id``, ``min_daily_remaining``) and every storage parameter of
    ``StorageExportMixin`` (``output_path``, ``layout``, ``compression``, ...), plus:

    :param deferrable: wait in the triggerer, freeing the worker. Default: Airflow's
        ``[operators] default_deferrable``.
    :param poll_interval: time between two readiness checks, a timedelta or seconds.
        Default 60 seconds.
    :param batch_timeout: how long to wait for the files to be ready, a timedelta or
        seconds; then the task fails with ``BatchError``. Default 6 hours.
    :param max_consecutive_failures: readiness checks that may fail in a row (after the
        hook's own retries) in the triggerer before the task fails. Default 3.
    :param download_concurrency: files downloaded at the same time. Default 4.
    :param max_url_refreshes: fresh sets of presigned URLs fetched at most when they expire
        during the download. Default 3.
    :param durable: keep the submitted export for retries (see above). Default True.
    :param confirm_file_list: download only once two readiness checks in a row, one
        ``poll_interval`` apart, list the same files, in case the service lists files as they
        are produced. Costs one more call of the urls route per export. Default False.
    """

    template_fields: Sequence[str] = (*SEARCH_TEMPLATE_FIELDS, *STORAGE_TEMPLATE_FIELDS)
    external_id_key = "centralmon_batch_job"
    ui_color = "#dbe9f6"

    def __init__(
        self,
        *,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: timedelta | float = DEFAULT_POLL_INTERVAL,
        batch_timeout: timedelta | float = DEFAULT_BATCH_TIMEOUT,
        max_consecutive_failures: int = DEFAULT_MAX_CONSECUTIVE_FAILURES,
        download_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        max_url_refreshes: int = DEFAULT_MAX_URL_REFRESHES,
        durable: bool = True,
        confirm_file_list: bool = False,
        **kwargs: Any,
    ) -> None:
        if AIRFLOW_V_3_3_PLUS:
            # Before 3.3 the stand-in mixin warns about any explicit durable and ignores it.
            kwargs["durable"] = durable
        super().__init__(**kwargs)
        self.deferrable = _flag("deferrable", deferrable)
        self.durable = _flag("durable", durable)
        self.confirm_file_list = _flag("confirm_file_list", confirm_file_list)
        self.poll_interval = as_seconds(poll_interval, "poll_interval")
        self.batch_timeout = as_seconds(batch_timeout, "batch_timeout")
        self.max_consecutive_failures = as_positive_count(
            max_consecutive_failures, "max_consecutive_failures"
        )
        self.download_concurrency = as_positive_count(download_concurrency, "download_concurrency")
        if isinstance(max_url_refreshes, bool) or not isinstance(max_url_refreshes, int):
            raise InvalidParameterError("max_url_refreshes must be a whole number, 0 or more")
        if max_url_refreshes < 0:
            raise InvalidParameterError("max_url_refreshes must be a whole number, 0 or more")
        self.max_url_refreshes = max_url_refreshes
        self._run_plan: SearchPlan | None = None
        self._run_hook: CentralMonitoringHook | None = None
        self._job: BatchJob | None = None
        self._batch_token: str | None = None
        self._known_status: BatchStatus | None = None
        self._resumed = False
        self._result: dict[str, Any] | None = None

    # -- entry points --------------------------------------------------------------------------

    def execute(self, context: Context) -> Any:
        """Submit the export (or reconnect to an earlier try's), wait, download, publish."""
        plan, _ = self._prepare(context)
        self.check_export_target(plan)
        if AIRFLOW_V_3_3_PLUS and context.get("task_state_store") is not None:
            return self.execute_resumable(context)
        return self._execute_with_marker(context)

    def execute_complete(self, context: Context, event: Mapping[str, Any] | None = None) -> Any:
        """Resume after the trigger: download and publish, or raise what the trigger reported.

        :param context: the task's context
        :param event: the trigger's event; ``resume_with`` holds the submitted export's record
        """
        where = f"Task {self.task_id}"
        status = events.event_status(
            event, {events.SUCCESS, events.FAILED, events.TIMEOUT, events.ERROR}, where=where
        )
        assert event is not None  # checked by event_status
        if status == events.ERROR:
            events.raise_error_event(event)
        if status == events.FAILED:
            raise BatchError(f"{event.get('message')}; a retry submits a new export")
        if status == events.TIMEOUT:
            raise BatchError(
                f"the batch export was not ready within batch_timeout={self.batch_timeout:g} s "
                f"({event.get('polls')} polls); a retry reconnects to it"
            )

        remembered = BatchJob.from_json(event.get("resume_with"))
        if remembered is None:
            raise BatchError(f"{where} resumed without the submitted export; retry the task")
        _, hook = self._prepare(context)
        self._job = remembered
        self._batch_token = hook.unseal(remembered.batch_ref)
        files = hook.get_batch_files(self._batch_token)
        if batch_phase(files) is not BatchPhase.READY:
            raise BatchError(
                f"the batch export was ready, then no longer: {describe_progress(files)}",
                request_id=files.meta.request_id,
            )
        return self._export(context, files)

    # -- ResumableJobMixin ---------------------------------------------------------------------

    def submit_job(self, context: Context) -> dict[str, Any]:
        """Submit the export; push and return its sealed record (never the token in clear)."""
        plan, hook = self._current()
        self.check_quota_floor(hook, "batch")
        send_time_range = SendTimeRange(
            plan.window,
            now=self.now,
            style=self.lower_bound_style,
            clock_skew_margin=self.clock_skew_margin,
        )
        submitted_at = self.now()
        try:
            submission = hook.submit_batch(lambda: plan.query.search_body(send_time_range()))
        finally:
            remember_quota(hook)
        send_time_range.check_answered()
        time_range = str(send_time_range.sent)

        self._batch_token = submission.batch_token
        self._job = BatchJob(
            batch_ref=hook.seal(submission.batch_token),
            export_key=export_key(plan),
            submitted_at=_iso(submitted_at),
            time_range=time_range,
            request_id=submission.request_id,
        )
        context["ti"].xcom_push(key=BATCH_REF_XCOM_KEY, value=self._job.batch_ref)
        self.log.info(
            "Batch export accepted (request id %s, time_range %s); batch calls left today: %s",
            submission.request_id or "-",
            time_range,
            "?" if submission.daily_remaining is None else submission.daily_remaining,
        )
        return self._job.to_json()

    def get_job_status(self, external_id: Any, context: Context) -> str:
        """Return ``pending`` or ``ready`` if an earlier try's export can still be downloaded.

        Any other answer (``unreadable``, ``other_export``, ``unsealable``, ``gone``,
        ``failed``) makes the task submit a new export. Network and server errors are raised:
        they say nothing about the export, and a new submission would cost quota.
        """
        plan, hook = self._current()
        job = BatchJob.from_json(external_id)
        if job is None:
            return self._cannot_resume("unreadable", "its record is not readable")
        if job.export_key != export_key(plan):
            return self._cannot_resume("other_export", "it was submitted for another query")
        try:
            token = hook.unseal(job.batch_ref)
        except InvalidParameterError:
            return self._cannot_resume("unsealable", "the connection's credentials changed")
        try:
            status = hook.get_batch_files(token)
        except (BadRequestError, BatchError) as error:
            return self._cannot_resume("gone", f"the service no longer lists it ({error})")
        except InvalidParameterError as error:
            # For a token the service accepted in an earlier try, a 404 means it forgot the
            # export, not that the route is wrong: a wrong route fails a fresh export's first
            # check already, where a 404 is raised as a configuration error.
            if error.http_status not in _GONE_STATUSES:
                raise
            answer = f"{error.http_status} for its token, request id {error.request_id or '-'}"
            return self._cannot_resume("gone", f"the service no longer lists it ({answer})")
        finally:
            remember_quota(hook)
        phase = batch_phase(status)
        if phase is BatchPhase.FAILED:
            return self._cannot_resume("failed", f"it failed ({failure_text(status)})")

        self._job, self._batch_token, self._known_status = job, token, status
        return str(phase.value)

    def is_job_active(self, status: str) -> bool:
        """Whether an earlier try's export can be reconnected to (it is pending or ready)."""
        return status in (_PENDING, _READY)

    def is_job_succeeded(self, status: str) -> bool:
        """Always False: even a ready export still has to be downloaded and published."""
        return False

    # execute_resumable returns this method's value when it reconnects, so it returns the
    # published export although the mixin declares None.
    def poll_until_complete(  # type: ignore[override]
        self, external_id: Any, context: Context
    ) -> dict[str, Any]:
        """Wait until the export is ready (deferring if asked), then download and publish."""
        job, status = self._job, self._known_status
        if job is None or self._batch_token is None:
            raise BatchError("no batch export to wait for: it was neither submitted nor found")
        if status is not None:
            self._resumed = True
            self.log.info(
                "Reconnected to the batch export submitted at %s by an earlier try (%s); "
                "not submitting a new one",
                job.submitted_at,
                describe_progress(status),
            )
            context["ti"].xcom_push(key=BATCH_REF_XCOM_KEY, value=job.batch_ref)

        if status is None or batch_phase(status) is not BatchPhase.READY or self.confirm_file_list:
            if self.deferrable:
                self._defer_until_ready(job)
            token, hook = self._batch_token, self._current()[1]
            status = wait_until_ready(
                lambda: hook.get_batch_files(token),
                timeout_s=self.batch_timeout,
                poll_interval_s=self.poll_interval,
                log=self.log,
                confirm=self.confirm_file_list,
                first=status,
            )
        self._result = self._export(context, status)
        return self._result

    def get_job_result(self, external_id: Any, context: Context) -> dict[str, Any] | None:
        """Return what :meth:`poll_until_complete` published."""
        return self._result

    # -- steps -----------------------------------------------------------------------------------

    def _prepare(self, context: Context) -> tuple[SearchPlan, CentralMonitoringHook]:
        self._run_plan = self.plan_search(context)
        self._run_hook = self.get_hook()
        return self._run_plan, self._run_hook

    def _current(self) -> tuple[SearchPlan, CentralMonitoringHook]:
        if self._run_plan is None or self._run_hook is None:
            raise RuntimeError("execute() prepares the run before any step of it")
        return self._run_plan, self._run_hook

    def _execute_with_marker(self, context: Context) -> Any:
        """Resume from a marker on the output storage, the way ResumableJobMixin does."""
        marker = self._job_marker(context, warn=True)
        stored = marker.load() if marker is not None else None
        if stored is not None:
            status = self.get_job_status(stored, context)
            if self.is_job_active(status):
                return self.poll_until_complete(stored, context)

        record = self.submit_job(context)
        if marker is not None:
            marker.save(record)
            self.log.info("Kept the sealed batch reference in %s for retries", marker.location)
        return self.poll_until_complete(record, context)

    def _job_marker(self, context: Context, *, warn: bool = False) -> JobMarker | None:
        plan, _ = self._current()
        if not self.durable:
            return None
        if plan.window.is_raw and self.layout is OutputLayout.PARTITIONED:
            # The directory of a raw time_range export is named after the request time,
            # which a retry cannot know before it submits.
            if warn:
                self.log.warning(
                    "A raw time_range export in the partitioned layout cannot be resumed on "
                    "this Airflow version: a retry will submit a new batch export"
                )
            return None
        directory = export_directory(
            self.rendered_output_path(),
            layout=self.layout,
            window=plan.window,
            query=plan.export_fields(),
            requested_at=self.now(),
        )
        return JobMarker(directory, task_identity(context))

    def _cannot_resume(self, status: str, reason: str) -> str:
        self.log.warning(
            "The batch export of an earlier try cannot be reused: %s. Submitting a new one", reason
        )
        return status

    def _defer_until_ready(self, job: BatchJob) -> None:
        # Imported here: DAG files that only declare the task need not load Airflow's triggers.
        from airflow_provider_centralmon.triggers.batch import CentralMonitoringBatchTrigger

        trigger = CentralMonitoringBatchTrigger(
            batch_ref=job.batch_ref,
            centralmon_conn_id=self.centralmon_conn_id,
            deadline=time.time() + self.batch_timeout,
            poll_interval=self.poll_interval,
            max_consecutive_failures=self.max_consecutive_failures,
            confirm_file_list=self.confirm_file_list,
            resume_with=job.to_json(),
        )
        self.log.info(
            "Deferring until the batch export is ready (checked every %g s, for %g s at most)",
            self.poll_interval,
            self.batch_timeout,
        )
        self.defer(
            trigger=trigger,
            method_name="execute_complete",
            timeout=timedelta(seconds=self.batch_timeout + self.poll_interval + _DEFERRAL_GRACE_S),
        )

    def _export(self, context: Context, status: BatchStatus) -> dict[str, Any]:
        plan, hook = self._current()
        job, token = self._job, self._batch_token
        if job is None or token is None:
            raise BatchError("no batch export to download")
        download = BatchDownload(
            files=status.files,
            new_hook=self.get_hook,
            list_files=lambda: hook.get_batch_files(token),
            max_concurrency=self.download_concurrency,
            max_url_refreshes=self.max_url_refreshes,
            log=self.log,
        )
        self.log.info(
            "Downloading %d files, %d at a time", len(status.files), self.download_concurrency
        )
        requested_at = datetime.fromisoformat(job.submitted_at)
        with self.open_export_writer(plan, requested_at=requested_at) as writer:
            downloaded = attempts = 0
            try:
                for delivery in download.deliveries():
                    downloaded += len(delivery.records)
                    if delivery.finished is not None:
                        attempts += delivery.finished.attempts
                        writer.add_page()
                        self._log_file_done(delivery, len(status.files))
                        continue
                    _add_window_records(writer, plan, delivery)
            except BatchError as error:
                if not download.files_gone:
                    raise
                # Reconnecting to this export would fail the same way on every retry.
                self._forget_job(context)
                raise BatchError(
                    f"{error.message}; a retry submits a new export",
                    http_status=error.http_status,
                    request_id=error.request_id,
                ) from error

            run_info = self._run_info(context, status, downloaded, attempts, download)
            result = self.publish_export(writer, plan, run_info=run_info, context=context)
        self._forget_job(context)
        return result

    def _log_file_done(self, delivery: Delivery, files: int) -> None:
        report = delivery.finished
        assert report is not None
        stated = "" if report.stated_records is None else " (as stated)"
        self.log.info(
            "Batch file %d of %d: %d records%s", report.index + 1, files, report.records, stated
        )

    def _run_info(
        self,
        context: Context,
        status: BatchStatus,
        downloaded: int,
        attempts: int,
        download: BatchDownload,
    ) -> dict[str, Any]:
        job = self._job
        assert job is not None
        _, hook = self._current()
        quota = hook.last_quota
        ti = context["ti"]
        return {
            "batch": {
                "submitted_at": job.submitted_at,
                "time_range": job.time_range,
                "submit_request_id": job.request_id,
                "urls_request_id": status.meta.request_id,
                "resumed": self._resumed,
                "files": len(status.files),
                "records_downloaded": downloaded,
                "file_downloads": attempts,
                "url_refreshes": download.url_refreshes,
                "daily_remaining": None if quota is None else quota.remaining,
            },
            "dag_id": ti.dag_id,
            "task_id": ti.task_id,
            "run_id": ti.run_id,
            "try_number": ti.try_number,
            "exported_at": _iso(self.now()),
        }

    def _forget_job(self, context: Context) -> None:
        """Drop the retry record once the export is published: a rerun submits afresh.

        Limitation: a task killed after this, before Airflow records its success, submits a
        new export on retry; the published manifest cannot tell that retry from a deliberate
        rerun meant to fetch records that arrived late, so it is not used to skip.
        """
        store = context.get("task_state_store") if AIRFLOW_V_3_3_PLUS else None
        if store is not None:
            store.delete(self.external_id_key)
            return
        marker = self._job_marker(context)
        if marker is not None:
            marker.clear()


def _add_window_records(writer: ExportWriter, plan: SearchPlan, delivery: Delivery) -> None:
    window_filter = plan.window_filter
    for item in delivery.records:
        unwrapped = unwrap_record(item, keep_hit_metadata=plan.keep_hit_metadata)
        time_us = window_filter.record_time(unwrapped.source)
        if window_filter.admit(time_us, record_id=unwrapped.record_id):
            writer.add(unwrapped.record, time_us=time_us, record_id=unwrapped.record_id)


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidParameterError(f"{name} must be True or False, not {value!r}")
    return value


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
