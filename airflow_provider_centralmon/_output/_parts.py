"""Cut a sorted stream of JSON lines into numbered parts of bounded size.

Each part is JSON Lines, gzipped by default. The gzip stream carries no file name and a zero
modification time, so the same lines always give the same bytes. A part is closed before a
line that would take it over ``max_part_bytes`` (uncompressed) or ``max_part_records``; a
single line larger than the byte limit gets a part of its own.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from typing import Any, BinaryIO

from airflow_provider_centralmon._output._layout import Compression, part_name
from airflow_provider_centralmon._output._store import Store

# zlib's own gzip wrapper: header with mtime 0, no name and a fixed OS byte.
_GZIP_WBITS = 31
_GZIP_LEVEL = 6
_WRITE_CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class PartInfo:
    """What the manifest says about one written part."""

    name: str
    records: int
    bytes: int
    uncompressed_bytes: int
    sha256: str

    def as_dict(self) -> dict[str, Any]:
        """Return the part as a JSON-ready dict."""
        return {
            "name": self.name,
            "records": self.records,
            "bytes": self.bytes,
            "uncompressed_bytes": self.uncompressed_bytes,
            "sha256": self.sha256,
        }


class PartWriter:
    """Write lines into ``part-00000...`` files in one directory of a store.

    :param store: where the parts go (a staging directory)
    :param compression: ``gzip`` or ``none``
    :param max_part_bytes: uncompressed bytes per part at most, or None for no limit
    :param max_part_records: records per part at most, or None for no limit
    """

    def __init__(
        self,
        *,
        store: Store,
        compression: Compression,
        max_part_bytes: int | None,
        max_part_records: int | None,
    ) -> None:
        self._store = store
        self._compression = compression
        self._max_bytes = max_part_bytes
        self._max_records = max_part_records
        self.parts: list[PartInfo] = []
        self._open_part: _OpenPart | None = None

    def write(self, line: bytes) -> None:
        """Append one encoded line, starting a new part first when the limits say so."""
        part = self._open_part
        if part is not None and self._is_full(part, len(line)):
            self._close_part()
            part = None
        if part is None:
            name = part_name(len(self.parts), self._compression)
            part = _OpenPart(name, self._store.open_write(name), self._compression)
            self._open_part = part
        part.write(line)

    def _is_full(self, part: _OpenPart, line_bytes: int) -> bool:
        if self._max_records is not None and part.records >= self._max_records:
            return True
        return self._max_bytes is not None and part.uncompressed + line_bytes > self._max_bytes

    def finish(self) -> list[PartInfo]:
        """Close the last part and return every part written."""
        if self._open_part is not None:
            self._close_part()
        return self.parts

    def discard(self) -> None:
        """Close an unfinished part without recording it."""
        if self._open_part is not None:
            self._open_part.stream.close()
            self._open_part = None

    def _close_part(self) -> None:
        part, self._open_part = self._open_part, None
        if part is not None:
            self.parts.append(part.close())


class _OpenPart:
    def __init__(self, name: str, stream: BinaryIO, compression: Compression) -> None:
        self.name = name
        self.stream = stream
        self.records = 0
        self.uncompressed = 0
        self._stored = 0
        self._sha256 = hashlib.sha256()
        self._pending = bytearray()
        self._compressor = (
            zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, _GZIP_WBITS)
            if compression is Compression.GZIP
            else None
        )

    def write(self, line: bytes) -> None:
        self._pending += line
        self.records += 1
        self.uncompressed += len(line)
        if len(self._pending) >= _WRITE_CHUNK_BYTES:
            self._flush_pending()

    def _flush_pending(self) -> None:
        data = bytes(self._pending)
        self._pending.clear()
        if self._compressor is not None:
            data = self._compressor.compress(data)
        self._emit(data)

    def _emit(self, data: bytes) -> None:
        if data:
            self.stream.write(data)
            self._sha256.update(data)
            self._stored += len(data)

    def close(self) -> PartInfo:
        self._flush_pending()
        if self._compressor is not None:
            self._emit(self._compressor.flush())
        self.stream.close()
        return PartInfo(
            name=self.name,
            records=self.records,
            bytes=self._stored,
            uncompressed_bytes=self.uncompressed,
            sha256=self._sha256.hexdigest(),
        )
