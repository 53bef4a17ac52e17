"""The manifest of a complete export, and the run file beside it.

``_manifest.json`` describes what was exported and nothing about the run that did it, so the
same window and the same records always give the same bytes (sorted keys, two-space indent,
UTF-8, final newline). It holds only what the window, the query and the written records
determine:

- ``schema_version``, ``provider_version``, ``format`` (``jsonl``) and ``compression``;
- ``window``: ``start`` and ``end`` (ISO 8601 UTC), or the raw ``time_range`` with the
  instant it was requested at;
- ``query``: the query fields (never credentials);
- ``record_time``: the time field and the policy for records without a readable time;
- ``counts``: ``records`` written, of which ``untimed`` have no readable time;
- ``bytes`` and ``uncompressed_bytes`` of all parts, and ``parts``: name, records, bytes,
  uncompressed bytes and SHA-256 of each;
- ``run_file``: the name of the file that describes the run (``_run.json``).

Everything that depends on when the run happened goes to ``_run.json``, written just before
the manifest: request ids, remaining quota, pages, and the counts of what the service
returned besides the written records (records before or after the window, untimed records
dropped, duplicates). The service's answer reaches from a lower bound computed at request
time up to its own now, so those counts change from one run of the same window to the next.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from airflow_provider_centralmon import __version__
from airflow_provider_centralmon._output._layout import RUN_NAME, Compression, hashed_query
from airflow_provider_centralmon._output._parts import PartInfo
from airflow_provider_centralmon._window import ExportWindow, WindowFilter

MANIFEST_SCHEMA_VERSION = 1
RECORD_FORMAT = "jsonl"


def build_manifest(
    *,
    window: ExportWindow,
    requested_at: datetime,
    query: Mapping[str, Any],
    window_filter: WindowFilter | None,
    parts: Sequence[PartInfo],
    untimed_records: int,
    compression: Compression,
) -> dict[str, Any]:
    """Return the manifest of an export as a JSON-ready dict (see the module docstring).

    :param untimed_records: written records without a readable time
    """
    described_window: dict[str, Any] = window.describe()
    if window.is_raw:
        described_window["requested_at"] = requested_at.isoformat()

    record_time: dict[str, Any] | None = None
    if window_filter is not None:
        record_time = {
            "timestamp_field": window_filter.timestamp_field,
            "untimed_policy": window_filter.untimed_policy.value,
        }

    return {
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "provider_version": __version__,
        "format": RECORD_FORMAT,
        "compression": compression.value,
        "window": described_window,
        "query": hashed_query(query),
        "record_time": record_time,
        "counts": {"records": sum(part.records for part in parts), "untimed": untimed_records},
        "bytes": sum(part.bytes for part in parts),
        "uncompressed_bytes": sum(part.uncompressed_bytes for part in parts),
        "parts": [part.as_dict() for part in parts],
        "run_file": RUN_NAME,
    }


def encode_json_document(document: Mapping[str, Any]) -> bytes:
    """Return ``document`` as deterministic JSON: sorted keys, two-space indent, UTF-8."""
    return (json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()
