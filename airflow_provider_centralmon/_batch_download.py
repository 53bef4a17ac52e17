"""Download the files of a ready batch export in parallel, for one consumer thread.

Each file is streamed by a worker thread with a hook of its own; records travel in chunks
through a bounded queue to the thread that iterates :meth:`BatchDownload.deliveries`, so the
consumer (an export writer, which is not thread-safe) is only ever called from one thread,
and memory stays bounded by ``queue_chunks * chunk_records`` records whatever the file sizes.

Failures are handled per file:

- an expired presigned URL makes one thread ask the service for fresh URLs for every file
  (the others wait for that answer instead of asking too), within ``max_url_refreshes``;
- a file the storage does not have (404 or 410) is asked for once more with fresh URLs, if
  any renewal is left; missing then too, the export's files are gone (:attr:`files_gone`);
- a connection lost or a body cut short halfway through a file downloads it again, skipping
  the records already handed over, within ``file_attempts``; content that is not a JSON array
  of objects fails at once, since a new download would read the same;
- a file whose record count the service states must hold exactly that many records.

Any other error stops every thread and is raised in the consumer's thread.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_centralmon._batch_state import BatchPhase, batch_phase, describe_progress
from airflow_provider_centralmon._waiting import as_positive_count
from airflow_provider_centralmon.exceptions import (
    BatchError,
    CentralMonitoringError,
    PresignedUrlExpiredError,
    ProtocolError,
)
from airflow_provider_centralmon.hooks._types import BatchFile, BatchStatus
from airflow_provider_centralmon.hooks.centralmon import CentralMonitoringHook

DEFAULT_MAX_CONCURRENCY = 4
DEFAULT_CHUNK_RECORDS = 2_000
DEFAULT_QUEUE_CHUNKS = 16
DEFAULT_MAX_URL_REFRESHES = 3
DEFAULT_FILE_ATTEMPTS = 3
# Storage answers for a file it does not hold, e.g. S3's 404 NoSuchKey.
_MISSING_FILE_STATUSES = frozenset({404, 410})
# How often a blocked worker looks whether the download was stopped, seconds.
_STOP_CHECK_S = 0.2

_module_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileReport:
    """How the download of one file went.

    :param index: the file's index in the service's list
    :param records: records handed over
    :param attempts: downloads started (more than 1 after a lost connection)
    :param stated_records: the count the service stated for the file, if it did
    """

    index: int
    records: int
    attempts: int
    stated_records: int | None


@dataclass(frozen=True)
class Delivery:
    """Records of one file, in the file's order; ``finished`` is set on a file's last delivery.

    :param index: the file's index
    :param records: the elements of the file (OpenSearch hits), possibly none
    :param finished: the file's report, once it has been read to its end
    """

    index: int
    records: list[dict[str, Any]] = field(repr=False)
    finished: FileReport | None = None


class _UrlBook:
    """The current presigned URL of every file, renewed at most once per expiry wave."""

    def __init__(
        self,
        files: Sequence[BatchFile],
        list_files: Callable[[], BatchStatus],
        max_refreshes: int,
        log: Any,
    ) -> None:
        self._files = {file.index: file for file in files}
        self._list_files = list_files
        self._max_refreshes = max_refreshes
        self._log = log
        self._lock = threading.Lock()
        self._missing_since: int | None = None
        self.generation = 0

    def current(self, index: int) -> tuple[int, BatchFile]:
        """Return the generation of the URLs and the file's current entry."""
        with self._lock:
            return self.generation, self._files[index]

    def is_gone(self, seen_generation: int) -> bool:
        """Note a file missing from storage with URLs of ``seen_generation``; is it gone?

        A URL signed before the service moved a file may miss it, so the first miss asks for
        fresh URLs. Gone: missing with URLs fetched after a first file was missed, or with no
        fresh URLs left to fetch.
        """
        with self._lock:
            if self._missing_since is None:
                self._missing_since = seen_generation
            if seen_generation > self._missing_since:
                return True
            renewed = self.generation > seen_generation
            return not renewed and self.generation >= self._max_refreshes

    def renew(self, seen_generation: int) -> None:
        """Fetch fresh URLs, unless another thread already did since ``seen_generation``."""
        with self._lock:
            if self.generation > seen_generation:
                return
            if self.generation >= self._max_refreshes:
                raise BatchError(
                    f"presigned URLs kept expiring after {self.generation} fresh sets "
                    f"(max_url_refreshes={self._max_refreshes}); is the download too slow for "
                    "their lifetime? Raise max_url_refreshes or retry the task"
                )
            status = self._list_files()
            if batch_phase(status) is not BatchPhase.READY:
                raise BatchError(
                    "the batch export is no longer downloadable while fresh URLs were "
                    f"requested: {describe_progress(status)}",
                    request_id=status.meta.request_id,
                )
            fresh = {file.index: file for file in status.files}
            if fresh.keys() != self._files.keys():
                raise ProtocolError(
                    f"the batch export listed {len(self._files)} files, then {len(fresh)}",
                    request_id=status.meta.request_id,
                )
            self._files = fresh
            self.generation += 1
            self._log.info(
                "Presigned URLs had expired; fetched fresh ones (renewal %d of at most %d)",
                self.generation,
                self._max_refreshes,
            )


class BatchDownload:
    """Stream every file of a ready batch export through bounded parallel downloads.

    :param files: the files of the ready export, with their URLs
    :param new_hook: returns a new hook; each worker thread gets its own
    :param list_files: asks the service for the export's files again (fresh URLs); called
        from one thread at a time
    :param max_concurrency: files downloaded at the same time. Default 4.
    :param chunk_records: records per chunk handed to the consumer. Default 2,000.
    :param queue_chunks: chunks waiting for the consumer at most. Default 16.
    :param max_url_refreshes: fresh URL sets fetched at most. Default 3.
    :param file_attempts: downloads of one file at most, when connections are lost. Default 3.
    :param log: where progress and retries are logged; default this module's logger
    """

    def __init__(
        self,
        *,
        files: Sequence[BatchFile],
        new_hook: Callable[[], CentralMonitoringHook],
        list_files: Callable[[], BatchStatus],
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        chunk_records: int = DEFAULT_CHUNK_RECORDS,
        queue_chunks: int = DEFAULT_QUEUE_CHUNKS,
        max_url_refreshes: int = DEFAULT_MAX_URL_REFRESHES,
        file_attempts: int = DEFAULT_FILE_ATTEMPTS,
        log: Any = None,
    ) -> None:
        self._log = log or _module_log
        self._indexes = [file.index for file in files]
        self._urls = _UrlBook(files, list_files, max_url_refreshes, self._log)
        self._new_hook = new_hook
        self._max_concurrency = as_positive_count(max_concurrency, "max_concurrency")
        self._chunk_records = as_positive_count(chunk_records, "chunk_records")
        self._queue_chunks = as_positive_count(queue_chunks, "queue_chunks")
        self._file_attempts = as_positive_count(file_attempts, "file_attempts")
        self._stop = threading.Event()
        self._queue: queue.Queue[tuple[str, int, Any]] = queue.Queue(maxsize=self._queue_chunks)
        self._hooks: list[CentralMonitoringHook] = []
        self._hooks_guard = threading.Lock()
        self._local = threading.local()
        self._files_gone = threading.Event()

    @property
    def url_refreshes(self) -> int:
        """Fresh URL sets fetched so far."""
        return self._urls.generation

    @property
    def files_gone(self) -> bool:
        """Whether the download failed because storage no longer holds a file of the export.

        The export will never be downloadable again; only a new export can replace it.
        """
        return self._files_gone.is_set()

    def deliveries(self) -> Iterator[Delivery]:
        """Download every file and yield its records; call it from the consuming thread.

        Closing the iterator early (or an error in the consumer) stops the downloads.
        """
        remaining = set(self._indexes)
        workers = min(self._max_concurrency, max(len(remaining), 1))
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="centralmon-batch")
        try:
            for index in self._indexes:
                pool.submit(self._run_file, index)
            while remaining:
                kind, index, payload = self._queue.get()
                if kind == "failed":
                    raise payload
                if kind == "done":
                    remaining.discard(index)
                    yield Delivery(index=index, records=[], finished=payload)
                else:
                    yield Delivery(index=index, records=payload)
        finally:
            self._stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            self._close_hooks()

    # -- worker threads ------------------------------------------------------------------------

    def _run_file(self, index: int) -> None:
        try:
            report = self._fetch(index)
        except BaseException as error:
            # Every failure goes to the consumer, which raises it in its own thread.
            self._offer(("failed", index, error))
            return
        if report is not None:
            self._offer(("done", index, report))

    def _fetch(self, index: int) -> FileReport | None:
        hook = self._thread_hook()
        handed = _HandedOver()
        attempts = 0
        while not self._stop.is_set():
            generation, file = self._urls.current(index)
            if file.url is None:
                raise BatchError(f"batch file {index} is listed without a URL")
            attempts += 1
            try:
                finished = self._stream(hook, file.url, index, handed)
            except PresignedUrlExpiredError:
                # Not a failed attempt: the URL is replaced and the file read again.
                attempts -= 1
                self._urls.renew(generation)
                continue
            except BatchError as error:
                if error.http_status not in _MISSING_FILE_STATUSES:
                    raise
                if self._urls.is_gone(generation):
                    self._files_gone.set()
                    raise BatchError(
                        f"batch file {index} is gone from storage (it answered "
                        f"{error.http_status} after fresh URLs were asked for, or with none left "
                        "to ask for): the export cannot be downloaded any more",
                        http_status=error.http_status,
                    ) from error
                attempts -= 1
                self._urls.renew(generation)
                continue
            except CentralMonitoringError as error:
                # Content that is not what a batch file holds reads the same way again: only
                # network failures and files cut short are worth another download.
                if not error.retryable or attempts >= self._file_attempts:
                    raise
                self._log.warning(
                    "Batch file %d failed after %d records (%s); downloading it again and "
                    "skipping those, attempt %d of %d",
                    index,
                    handed.records,
                    error,
                    attempts + 1,
                    self._file_attempts,
                )
                continue
            if not finished:
                return None
            _check_count(file, handed.records)
            return FileReport(index, handed.records, attempts, file.record_count)
        return None

    def _stream(
        self, hook: CentralMonitoringHook, url: str, index: int, handed: _HandedOver
    ) -> bool:
        """Hand over the file's records that ``handed`` does not count yet.

        Returns False when the download was stopped meanwhile. ``handed`` counts the records
        handed over, so that a new attempt after a failure skips them.
        """
        skip = handed.records
        received = 0
        chunk: list[dict[str, Any]] = []
        elements = hook.iter_batch_file(url)
        try:
            for element in elements:
                received += 1
                if received <= skip:
                    continue
                chunk.append(element)
                if len(chunk) >= self._chunk_records:
                    if not self._offer(("chunk", index, chunk)):
                        return False
                    handed.records += len(chunk)
                    chunk = []
        finally:
            # Releases the HTTP connection of a download left halfway.
            if isinstance(elements, Generator):
                elements.close()
        if chunk:
            if not self._offer(("chunk", index, chunk)):
                return False
            handed.records += len(chunk)
        return True

    def _offer(self, item: tuple[str, int, Any]) -> bool:
        """Put an item on the queue; return False if the download was stopped meanwhile."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_STOP_CHECK_S)
            except queue.Full:
                continue
            return True
        return False

    def _thread_hook(self) -> CentralMonitoringHook:
        hook: CentralMonitoringHook | None = getattr(self._local, "hook", None)
        if hook is None:
            hook = self._new_hook()
            self._local.hook = hook
            with self._hooks_guard:
                self._hooks.append(hook)
        return hook

    def _close_hooks(self) -> None:
        with self._hooks_guard:
            hooks, self._hooks = self._hooks, []
        for hook in hooks:
            hook.close()


@dataclass
class _HandedOver:
    """Records of one file handed to the consumer so far, across attempts."""

    records: int = 0


def _check_count(file: BatchFile, received: int) -> None:
    if file.record_count is not None and received != file.record_count:
        raise ProtocolError(
            f"batch file {file.index} held {received} records, but the service stated "
            f"{file.record_count}; the export is incomplete or the file was replaced"
        )
