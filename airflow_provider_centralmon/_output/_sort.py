"""External merge sort of encoded records, with bounded memory.

Records are buffered up to a count and a byte budget, sorted by their sort key
(:func:`airflow_provider_centralmon._records.sort_key`), and spilled as sorted runs to local
temporary files. At the end the runs are merged (``heapq.merge``) into one sorted stream in
which exact duplicates, which then sit next to each other, are dropped and counted. When many
runs pile up, they are first merged into one, so the number of open files stays bounded.

A run file is a sequence of entries, each a header (time as a signed 64-bit integer, id
length and line length as unsigned 32-bit integers, big-endian) followed by the id and line
bytes.
"""

from __future__ import annotations

import gzip
import heapq
import logging
import os
import shutil
import struct
import tempfile
from collections.abc import Iterable, Iterator
from typing import IO

from airflow_provider_centralmon._records import SortKey

log = logging.getLogger(__name__)

_HEADER = struct.Struct(">qII")
# Python objects around each buffered record (tuple, int, two bytes objects) cost about this
# much besides the record's own bytes; counted so that small records also respect the budget.
_RECORD_OVERHEAD_BYTES = 200
# Above this many runs they are merged into one, keeping open files and merge fan-in small.
MAX_OPEN_RUNS = 64
_IO_BUFFER_BYTES = 256 * 1024


class ExternalSorter:
    """Sort records that may not fit in memory, dropping exact duplicates.

    :param max_buffer_records: records held in memory before a sorted run is spilled to disk
    :param max_buffer_bytes: bytes of buffered records (line, id and about 200 bytes of
        overhead each) before a run is spilled
    :param spill_dir: local directory for temporary run files; default: the system's
    :param compress_spills: gzip run files (level 1): less disk, more CPU
    """

    def __init__(
        self,
        *,
        max_buffer_records: int,
        max_buffer_bytes: int,
        spill_dir: str | None = None,
        compress_spills: bool = False,
    ) -> None:
        self._max_records = max_buffer_records
        self._max_bytes = max_buffer_bytes
        self._spill_parent = spill_dir
        self._compress = compress_spills
        self._buffer: list[SortKey] = []
        self._buffer_bytes = 0
        self._runs: list[str] = []
        self._run_dir: str | None = None
        self.duplicates = 0
        self.spilled_runs = 0

    def add(self, key: SortKey) -> None:
        """Add one record, given as its sort key (which ends with the encoded line)."""
        self._buffer.append(key)
        self._buffer_bytes += len(key[1]) + len(key[2]) + _RECORD_OVERHEAD_BYTES
        if len(self._buffer) >= self._max_records or self._buffer_bytes >= self._max_bytes:
            self._spill()

    def sorted_unique(self) -> Iterator[SortKey]:
        """Yield every record added, in key order, without exact duplicates.

        Call once, after the last :meth:`add`.
        """
        self._buffer.sort()
        if not self._runs:
            buffered, self._buffer = self._buffer, []
            yield from self._unique(buffered)
            return

        if self._buffer:
            self._spill()
        streams = [self._read_run(path) for path in self._runs]
        yield from self._unique(heapq.merge(*streams))

    def close(self) -> None:
        """Delete the temporary run files. Safe to call more than once."""
        self._buffer = []
        self._runs = []
        if self._run_dir is not None:
            shutil.rmtree(self._run_dir, ignore_errors=True)
            self._run_dir = None

    def _unique(self, keys: Iterable[SortKey]) -> Iterator[SortKey]:
        previous: SortKey | None = None
        for key in keys:
            if key == previous:
                self.duplicates += 1
                continue
            previous = key
            yield key

    def _spill(self) -> None:
        self._buffer.sort()
        path = self._write_run(self._unique(self._buffer))
        self._buffer = []
        self._buffer_bytes = 0
        self._runs.append(path)
        self.spilled_runs += 1
        log.debug("Spilled sorted run %s of %s", self.spilled_runs, path)

        if len(self._runs) >= MAX_OPEN_RUNS:
            runs, self._runs = self._runs, []
            merged = self._write_run(self._unique(heapq.merge(*map(self._read_run, runs))))
            for run in runs:
                os.unlink(run)
            self._runs = [merged]

    def _write_run(self, keys: Iterable[SortKey]) -> str:
        if self._run_dir is None:
            self._run_dir = tempfile.mkdtemp(prefix="centralmon-sort-", dir=self._spill_parent)
        handle, path = tempfile.mkstemp(suffix=".run", dir=self._run_dir)
        os.close(handle)

        pack = _HEADER.pack
        with self._open(path, "wb") as stream:
            write = stream.write
            for time_us, record_id, line in keys:
                write(pack(time_us, len(record_id), len(line)))
                write(record_id)
                write(line)
        return path

    def _read_run(self, path: str) -> Iterator[SortKey]:
        unpack = _HEADER.unpack
        header_size = _HEADER.size
        with self._open(path, "rb") as stream:
            read = stream.read
            while header := read(header_size):
                time_us, id_length, line_length = unpack(header)
                body = read(id_length + line_length)
                yield (time_us, body[:id_length], body[id_length:])

    def _open(self, path: str, mode: str) -> IO[bytes]:
        if self._compress:
            return gzip.open(path, mode, compresslevel=1)  # type: ignore[return-value]
        return open(path, mode, buffering=_IO_BUFFER_BYTES)
