"""Export writer: a window's records as JSON Lines parts with a manifest, on object storage.

See :mod:`._writer` for the publish protocol, :mod:`._layout` for where files go and
:mod:`._manifest` for what the manifest holds.
"""

from __future__ import annotations

from airflow_provider_centralmon._output._layout import (
    MANIFEST_NAME,
    RUN_NAME,
    Compression,
    OutputLayout,
    export_directory,
    query_hash,
)
from airflow_provider_centralmon._output._progress import (
    ExportPhase,
    ProgressCallback,
    ProgressSnapshot,
)
from airflow_provider_centralmon._output._store import file_in_the_way
from airflow_provider_centralmon._output._writer import (
    DEFAULT_MAX_PART_BYTES,
    DEFAULT_SORT_BUFFER_BYTES,
    DEFAULT_SORT_BUFFER_RECORDS,
    ExportWriter,
)

__all__ = [
    "DEFAULT_MAX_PART_BYTES",
    "DEFAULT_SORT_BUFFER_BYTES",
    "DEFAULT_SORT_BUFFER_RECORDS",
    "MANIFEST_NAME",
    "RUN_NAME",
    "Compression",
    "ExportPhase",
    "ExportWriter",
    "OutputLayout",
    "ProgressCallback",
    "ProgressSnapshot",
    "export_directory",
    "file_in_the_way",
    "query_hash",
]
