"""Where an export's files go, derived only from the query and the window.

With the ``partitioned`` layout (default) an export is written to::

    <output_path>/<application>/<start>_<end>/<query hash>/
        part-00000.jsonl.gz
        part-00001.jsonl.gz
        _run.json
        _manifest.json

- ``<start>`` and ``<end>`` are compact UTC times such as ``20261201T100000Z`` (with
  ``.ffffff`` microseconds only when they are not zero).
- ``<query hash>`` is the first 12 hex digits of the SHA-256 of the query fields as canonical
  JSON (sorted keys, no spaces), so the same query always lands in the same directory and a
  different filter never overwrites it. A ``time_range`` field is left out: the window stands
  for it.
- A raw ``time_range`` window is not repeatable, so its directory is named after the request
  instead: ``requested-<request time>_<time_range with unsafe characters as '_'>``.

With the ``exact`` layout the files go straight into ``output_path``, which the caller keeps
unique per window (for example with a templated path).

Either way the directory belongs to one export: running the same window again replaces its
parts and manifest. Parts are named ``part-<5 digits>.jsonl`` (``.jsonl.gz`` when gzipped).
``_manifest.json`` appears last and only for a complete export; ``_staging-*`` entries are
the leftovers of an unfinished one.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from airflow_provider_centralmon._compat import ObjectStoragePath
from airflow_provider_centralmon._output._store import join_path
from airflow_provider_centralmon._window import ExportWindow
from airflow_provider_centralmon.exceptions import InvalidParameterError

MANIFEST_NAME = "_manifest.json"
RUN_NAME = "_run.json"
STAGING_PREFIX = "_staging-"

_PART_NAME = re.compile(r"part-\d{5,}\.jsonl(\.gz)?")
_UNSAFE = re.compile(r"[^A-Za-z0-9.\-]+")
_QUERY_HASH_DIGITS = 12


class OutputLayout(enum.Enum):
    """How the export directory is derived from ``output_path``."""

    PARTITIONED = "partitioned"
    EXACT = "exact"


class Compression(enum.Enum):
    """How each part is compressed."""

    GZIP = "gzip"
    NONE = "none"


def part_name(index: int, compression: Compression) -> str:
    """Return the file name of the part at ``index`` (0-based)."""
    suffix = ".jsonl.gz" if compression is Compression.GZIP else ".jsonl"
    return f"part-{index:05d}{suffix}"


def is_part_name(name: str) -> bool:
    """Whether ``name`` is the name of a part, whatever its compression."""
    return _PART_NAME.fullmatch(name) is not None


def hashed_query(query: Mapping[str, Any]) -> dict[str, Any]:
    """Return the query fields that identify an export: all but ``time_range``."""
    return {key: value for key, value in query.items() if key != "time_range"}


def query_hash(query: Mapping[str, Any]) -> str:
    """Return the short SHA-256 of the query's canonical JSON (see the module docstring)."""
    try:
        canonical = json.dumps(
            hashed_query(query), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
    except (TypeError, ValueError) as error:
        raise InvalidParameterError(f"the query must be plain JSON data: {error}") from None
    return hashlib.sha256(canonical.encode()).hexdigest()[:_QUERY_HASH_DIGITS]


def compact_time(instant: datetime) -> str:
    """Return ``instant`` as compact UTC text, e.g. ``20261201T100000Z``."""
    utc = instant.astimezone(UTC)
    fraction = f".{utc.microsecond:06d}" if utc.microsecond else ""
    return utc.strftime("%Y%m%dT%H%M%S") + fraction + "Z"


def export_directory(
    output_path: ObjectStoragePath,
    *,
    layout: OutputLayout,
    window: ExportWindow,
    query: Mapping[str, Any],
    requested_at: datetime,
) -> ObjectStoragePath:
    """Return the directory an export of ``window`` for ``query`` is written to.

    :param output_path: the base path the user configured
    :param layout: ``partitioned`` derives a sub-directory, ``exact`` uses ``output_path``
    :param window: the exported window
    :param query: the query fields; ``application`` names the first level
    :param requested_at: when the records were requested; names raw ``time_range`` exports
    """
    if layout is OutputLayout.EXACT:
        return output_path

    application = query.get("application")
    if not isinstance(application, str) or not application:
        raise InvalidParameterError(
            "the partitioned output layout needs the query's 'application'; set it, or use "
            "the 'exact' layout"
        )
    segments = (_safe(application), _window_segment(window, requested_at), query_hash(query))
    return join_path(output_path, *segments)


def _window_segment(window: ExportWindow, requested_at: datetime) -> str:
    if window.start is None or window.end is None:
        return f"requested-{compact_time(requested_at)}_{_safe(str(window.time_range))}"
    return f"{compact_time(window.start)}_{compact_time(window.end)}"


def _safe(text: str) -> str:
    return _UNSAFE.sub("_", text).strip("_.") or "_"
