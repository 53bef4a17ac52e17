"""Write the records of one window to object storage, deterministically and atomically.

Records are handed over one by one in any order. They are encoded as JSON lines, sorted by
record time, id and bytes through a bounded external merge sort (memory does not grow with
the number of records), and exact duplicates are dropped. Nothing reaches the target until
:meth:`ExportWriter.publish`:

1. leftovers of unfinished runs (``_staging-*``) are removed;
2. the sorted records are written as parts into a fresh ``_staging-<random>/`` directory;
3. the old ``_manifest.json`` and ``_run.json`` are deleted, the staged parts are moved to
   their final names (replacing older ones), parts an older run had beyond the new count are
   deleted, and the staging directory is removed;
4. ``_run.json`` is written, then ``_manifest.json`` last.

A run that fails or is killed therefore never leaves a ``_manifest.json`` next to parts that
do not match it; only staging leftovers, which the next run removes.

Limitation: records that carry no ``_id`` and are byte for byte the same (same time, same
content) cannot be told apart from a record the service sent twice; only one is kept.
Limitation: two writers publishing into the same directory at the same time are neither
supported nor detected; each may delete the other's staging directory or replace its parts,
so either may fail and the manifest left may not match the parts. Limitation: a process killed
while collecting leaves its local sort runs in the temporary directory
(``centralmon-sort-*``).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from airflow_provider_centralmon._compat import ObjectStoragePath
from airflow_provider_centralmon._output._layout import (
    MANIFEST_NAME,
    RUN_NAME,
    STAGING_PREFIX,
    Compression,
    OutputLayout,
    export_directory,
    is_part_name,
    query_hash,
)
from airflow_provider_centralmon._output._manifest import build_manifest, encode_json_document
from airflow_provider_centralmon._output._parts import PartInfo, PartWriter
from airflow_provider_centralmon._output._progress import (
    DEFAULT_PROGRESS_INTERVAL_S,
    ExportPhase,
    ProgressCallback,
    ProgressMeter,
    ProgressSnapshot,
)
from airflow_provider_centralmon._output._sort import ExternalSorter
from airflow_provider_centralmon._output._store import Store
from airflow_provider_centralmon._records import UNTIMED_SORT_US, encode_line, sort_key
from airflow_provider_centralmon._window import ExportWindow, WindowFilter, parse_choice
from airflow_provider_centralmon.exceptions import InvalidParameterError

log = logging.getLogger(__name__)

DEFAULT_MAX_PART_BYTES = 256 * 1024 * 1024
DEFAULT_SORT_BUFFER_RECORDS = 50_000
DEFAULT_SORT_BUFFER_BYTES = 64 * 1024 * 1024


class ExportWriter:
    """Collect a window's records and publish them as JSON Lines parts with a manifest.

    Use it as a context manager: leaving the block without :meth:`publish` (for example on
    an error) calls :meth:`abort`.

    :param output_path: base path, any Airflow ``ObjectStoragePath`` or its URL
        (``file:///...``, ``s3://conn_id@bucket/prefix``, ``gs://...``)
    :param window: the exported window
    :param query: the query fields (``application``, ``domain``, ``filters``, ...); they
        name the directory and appear in the manifest, so they must not hold credentials
    :param layout: ``partitioned`` (default: a directory per application, window and query
        under ``output_path``) or ``exact`` (straight into ``output_path``)
    :param compression: ``gzip`` (default) or ``none``
    :param max_part_bytes: uncompressed bytes per part at most, or None. Default: 256 MiB.
    :param max_part_records: records per part at most, or None (default)
    :param sort_buffer_records: records kept in memory before a sorted run is spilled to
        local disk. Default: 50,000.
    :param sort_buffer_bytes: bytes of records kept in memory before a spill. Default: 64 MiB.
    :param spill_dir: local directory for sort runs. Default: the system's temporary directory.
    :param compress_spills: gzip the sort runs (less disk, more CPU). Default: False.
    :param requested_at: when the records were requested (timezone-aware); names the
        directory of a raw ``time_range`` export. Default: now.
    :param on_progress: called with a :class:`ProgressSnapshot` at most every
        ``progress_interval_s`` seconds, and when the phase changes. Default: none.
    :param progress_interval_s: seconds between two progress calls. Default: 30.
    :param clock: monotonic clock in seconds, for progress. Default: ``time.monotonic``.
    """

    def __init__(
        self,
        *,
        output_path: ObjectStoragePath | str,
        window: ExportWindow,
        query: Mapping[str, Any],
        layout: OutputLayout | str = OutputLayout.PARTITIONED,
        compression: Compression | str = Compression.GZIP,
        max_part_bytes: int | None = DEFAULT_MAX_PART_BYTES,
        max_part_records: int | None = None,
        sort_buffer_records: int = DEFAULT_SORT_BUFFER_RECORDS,
        sort_buffer_bytes: int = DEFAULT_SORT_BUFFER_BYTES,
        spill_dir: str | None = None,
        compress_spills: bool = False,
        requested_at: datetime | None = None,
        on_progress: ProgressCallback | None = None,
        progress_interval_s: float = DEFAULT_PROGRESS_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        _require_positive("max_part_bytes", max_part_bytes, optional=True)
        _require_positive("max_part_records", max_part_records, optional=True)
        _require_positive("sort_buffer_records", sort_buffer_records, optional=False)
        _require_positive("sort_buffer_bytes", sort_buffer_bytes, optional=False)

        self.window = window
        self.query = dict(query)
        if requested_at is not None and requested_at.utcoffset() is None:
            raise InvalidParameterError("requested_at must be a timezone-aware datetime")
        self.requested_at = requested_at or datetime.now(UTC)
        self.compression = parse_choice(Compression, compression, "compression")
        self.layout = parse_choice(OutputLayout, layout, "output layout")
        if not isinstance(output_path, ObjectStoragePath):
            output_path = ObjectStoragePath(output_path)
        self.directory = export_directory(
            output_path,
            layout=self.layout,
            window=window,
            query=self.query,
            requested_at=self.requested_at,
        )
        self._store = Store(directory=self.directory)
        self._part_limits = (max_part_bytes, max_part_records)
        self._sorter = ExternalSorter(
            max_buffer_records=sort_buffer_records,
            max_buffer_bytes=sort_buffer_bytes,
            spill_dir=spill_dir,
            compress_spills=compress_spills,
        )
        self._progress = ProgressMeter(
            on_progress=on_progress, interval_s=progress_interval_s, clock=clock
        )
        self._staging: Store | None = None
        self._finished = False

    def __enter__(self) -> ExportWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not self._finished:
            self.abort()

    @property
    def progress(self) -> ProgressSnapshot:
        """The export's counters now."""
        return self._progress.snapshot()

    def add(self, record: Mapping[str, Any], *, time_us: int | None, record_id: str = "") -> None:
        """Take one record of the window.

        :param record: the record as it is to be written (JSON data; key order is kept)
        :param time_us: its time in microseconds since the epoch, or None if it has none
        :param record_id: its ``_id``, or ``""``; breaks ties between records of equal time
        """
        self._require_open()
        line = encode_line(record)
        self._sorter.add(sort_key(time_us, record_id, line))

        progress = self._progress
        progress.records += 1
        progress.bytes += len(line)
        progress.tick()

    def add_page(self) -> None:
        """Count one fetched page, for progress reports."""
        self._progress.pages += 1

    def publish(
        self,
        *,
        window_filter: WindowFilter | None = None,
        run_info: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Write and publish the export; call once, after the fetch finished.

        Returns ``{"path", "manifest", "run"}``: the export directory, the manifest, and the
        run provenance written to ``_run.json`` (``run_info`` plus the writer's counters).

        :param window_filter: the filter the records went through; its settings go into the
            manifest, its counts into ``_run.json``
        :param run_info: run-specific provenance (request ids, remaining quota, run id,
            export time), JSON data without secrets
        """
        self._require_open()
        self._finished = True
        staging = self._store.child(f"{STAGING_PREFIX}{uuid.uuid4().hex}")
        self._staging = staging
        try:
            self._remove_stale_staging()
            parts, untimed = self._write_parts(staging)
            manifest = build_manifest(
                window=self.window,
                requested_at=self.requested_at,
                query=self.query,
                window_filter=window_filter,
                parts=parts,
                untimed_records=untimed,
                compression=self.compression,
            )
            run = self._run_document(run_info, window_filter)
            self._publish_staged(staging, parts, manifest, run)
        except BaseException:
            self._remove_staging()
            raise
        finally:
            self._sorter.close()

        self._staging = None
        self._progress.phase = ExportPhase.PUBLISHED
        self._progress.report()
        log.info(
            "Published %s records in %s parts (%s duplicates dropped) to %s",
            manifest["counts"]["records"],
            len(parts),
            self._sorter.duplicates,
            self.directory,
        )
        return {"path": str(self.directory), "manifest": manifest, "run": run}

    def abort(self) -> None:
        """Give up: delete local sort runs and any staged parts. Safe to call more than once."""
        self._finished = True
        self._sorter.close()
        self._remove_staging()

    def _require_open(self) -> None:
        if self._finished:
            raise RuntimeError("this export writer was already published or aborted")

    def _remove_stale_staging(self) -> None:
        for name in self._store.names():
            if name.startswith(STAGING_PREFIX):
                log.info("Removing %s left by an unfinished export in %s", name, self.directory)
                self._store.remove(name)

    def _write_parts(self, staging: Store) -> tuple[list[PartInfo], int]:
        """Write the sorted records as parts; return them and the count of untimed records."""
        staging.make()
        max_part_bytes, max_part_records = self._part_limits
        parts = PartWriter(
            store=staging,
            compression=self.compression,
            max_part_bytes=max_part_bytes,
            max_part_records=max_part_records,
        )
        progress = self._progress
        progress.phase = ExportPhase.WRITING
        progress.report()
        untimed = 0
        try:
            for sort_time, _record_id, line in self._sorter.sorted_unique():
                parts.write(line)
                if sort_time == UNTIMED_SORT_US:
                    untimed += 1
                progress.records_written += 1
                progress.parts_written = len(parts.parts)
                progress.tick()
            written = parts.finish()
        except BaseException:
            parts.discard()
            raise
        progress.parts_written = len(written)
        return written, untimed

    def _publish_staged(
        self,
        staging: Store,
        parts: list[PartInfo],
        manifest: Mapping[str, Any],
        run: Mapping[str, Any],
    ) -> None:
        self._progress.phase = ExportPhase.PUBLISHING
        self._progress.report()

        # From here on the directory holds no manifest until the new one is complete.
        self._store.remove(MANIFEST_NAME)
        self._store.remove(RUN_NAME)
        for part in parts:
            self._store.move_from(staging, part.name)

        current = {part.name for part in parts}
        for name in self._store.names():
            if is_part_name(name) and name not in current:
                self._store.remove(name)
        staging.remove_all()

        self._store.write_bytes(RUN_NAME, encode_json_document(run))
        self._store.write_bytes(MANIFEST_NAME, encode_json_document(manifest))

    def _run_document(
        self, run_info: Mapping[str, Any] | None, window_filter: WindowFilter | None
    ) -> dict[str, Any]:
        snapshot = self._progress.snapshot()
        run = dict(run_info or {})
        run["export"] = {
            "query_hash": query_hash(self.query),
            "pages": snapshot.pages,
            "records_received": snapshot.records,
            "bytes_received": snapshot.bytes,
            "duplicates_dropped": self._sorter.duplicates,
            "sort_runs_spilled": self._sorter.spilled_runs,
            "elapsed_s": round(snapshot.elapsed_s, 3),
        }
        if window_filter is not None:
            # What the service returned outside the window depends on when it was asked,
            # so these counts belong to the run, not to the manifest.
            counts = window_filter.counts
            run["export"]["window_filter"] = {**counts.as_dict(), "trimmed": counts.trimmed}
        return run

    def _remove_staging(self) -> None:
        staging, self._staging = self._staging, None
        if staging is None:
            return
        try:
            staging.remove_all()
        except Exception:
            # Cleanup must not hide the error that caused it; the next run removes leftovers.
            log.warning("Could not remove staging directory %s", staging, exc_info=True)


def _require_positive(name: str, value: int | None, *, optional: bool) -> None:
    if value is None and optional:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        allowed = "a positive integer or None" if optional else "a positive integer"
        raise InvalidParameterError(f"{name} must be {allowed}, not {value!r}")
