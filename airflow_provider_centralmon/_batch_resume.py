"""What a try remembers of the batch export it submitted, so that a retry reconnects to it.

On Airflow 3.3 and later the record goes to Airflow's task state store through
``ResumableJobMixin``. Older versions have no such store, so the record is written as a small
marker file, ``_batch_job.json``, into the export's directory on the output storage, which a
retry of the same task and run finds again; it is deleted once the export is published.

Either way the record holds the batch token sealed (Fernet, with a key derived from the
connection's client secret), never in clear, next to what identifies the export it was
submitted for, so a retry with a changed query or window does not reuse it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from airflow_provider_centralmon._output._store import Store

if TYPE_CHECKING:
    from airflow_provider_centralmon._compat import ObjectStoragePath
    from airflow_provider_centralmon._log_search import SearchPlan

JOB_MARKER_NAME = "_batch_job.json"
_FORMAT = 1


@dataclass(frozen=True)
class BatchJob:
    """A submitted batch export, as remembered between tries.

    :param batch_ref: the batch token, sealed
    :param export_key: identifies the query fields and window it was submitted for
    :param submitted_at: when it was accepted, ISO 8601 UTC
    :param time_range: the ``time_range`` it was submitted with
    :param request_id: the service's request id of the submission
    """

    batch_ref: str
    export_key: str
    submitted_at: str
    time_range: str
    request_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the record as JSON data (what is stored)."""
        return {
            "format": _FORMAT,
            "batch_ref": self.batch_ref,
            "export_key": self.export_key,
            "submitted_at": self.submitted_at,
            "time_range": self.time_range,
            "request_id": self.request_id,
        }

    @classmethod
    def from_json(cls, value: Any) -> BatchJob | None:
        """Return the record stored as ``value``, or None if it is not one of this format."""
        if not isinstance(value, Mapping) or value.get("format") != _FORMAT:
            return None
        batch_ref, key, submitted_at, time_range, request_id = (
            value.get(name)
            for name in ("batch_ref", "export_key", "submitted_at", "time_range", "request_id")
        )
        if not (
            isinstance(batch_ref, str)
            and isinstance(key, str)
            and isinstance(submitted_at, str)
            and isinstance(time_range, str)
            and isinstance(request_id, str | None)
            and batch_ref
        ):
            return None
        return cls(batch_ref, key, submitted_at, time_range, request_id)


def export_key(plan: SearchPlan) -> str:
    """Return a short hash of everything that decides which records a batch export holds."""
    identity = {"fields": plan.export_fields(), "window": plan.window.describe()}
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class JobMarker:
    """The marker file of one task's batch export, for Airflow versions before 3.3.

    Each marker names the task instance that wrote it (DAG, run, task, map index), so a
    marker left by another run exporting the same window is ignored and replaced.

    :param directory: the export's directory
    :param owner: the task instance's identity
    """

    def __init__(self, directory: ObjectStoragePath, owner: Mapping[str, Any]) -> None:
        self._store = Store(directory=directory)
        self._owner = dict(owner)
        self.location = f"{directory}/{JOB_MARKER_NAME}"

    def load(self) -> dict[str, Any] | None:
        """Return the stored record if this task instance wrote it, else None."""
        try:
            content = self._store.read_bytes(JOB_MARKER_NAME)
        except FileNotFoundError:
            return None
        try:
            document = msgspec.json.decode(content)
        except msgspec.DecodeError:
            return None
        if not isinstance(document, dict) or document.get("owner") != self._owner:
            return None
        job = document.get("job")
        return job if isinstance(job, dict) else None

    def save(self, job: Mapping[str, Any]) -> None:
        """Write the record (replacing any marker)."""
        self._store.make()
        document = {"owner": self._owner, "job": dict(job)}
        self._store.write_bytes(JOB_MARKER_NAME, msgspec.json.encode(document))

    def clear(self) -> None:
        """Delete the marker; nothing happens if there is none."""
        self._store.remove(JOB_MARKER_NAME)


def task_identity(context: Mapping[str, Any]) -> dict[str, Any]:
    """Return the identity of the running task instance, shared by all its tries."""
    ti = context["ti"]
    map_index = getattr(ti, "map_index", -1)
    return {
        "dag_id": ti.dag_id,
        "run_id": ti.run_id,
        "task_id": ti.task_id,
        "map_index": -1 if map_index is None else map_index,
    }
