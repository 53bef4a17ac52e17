"""The storage side of an export: where it goes, how it is written, and what it announces.

:class:`StorageExportMixin` goes between :class:`~._log_search.LogSearchMixin` and
``BaseOperator`` in the bases of an operator that writes a window's records to object
storage::

    class MyExport(LogSearchMixin, StorageExportMixin, BaseOperator): ...

It owns the storage parameters (checked when the DAG is parsed), declares the output as an
Airflow Asset outlet, describes it to OpenLineage when that provider is installed, and offers
the steps of a run: :meth:`~StorageExportMixin.check_export_target` before the first API call,
:meth:`~StorageExportMixin.open_export_writer` before the fetch and
:meth:`~StorageExportMixin.publish_export` after it. How the records are fetched (a scroll, a
batch export) is the operator's business.

The Asset is the base ``output_path``, not the directory of one window: every run of the task
updates the same asset, and the event's ``extra`` names the directory written. Airflow needs
a task's outlets when the DAG is parsed, so only a literal ``output_path`` is declared.
Limitation: a templated ``output_path`` declares no asset by itself; pass
``outlets=[Asset(...)]`` to announce one (an outlet with the same URI is never added twice).
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from airflow_provider_centralmon._compat import Asset, ObjectStoragePath
from airflow_provider_centralmon._output import (
    DEFAULT_MAX_PART_BYTES,
    MANIFEST_NAME,
    Compression,
    ExportWriter,
    OutputLayout,
    ProgressSnapshot,
    export_directory,
    file_in_the_way,
)
from airflow_provider_centralmon._query import is_templated, known_later, resolved_at_run_time
from airflow_provider_centralmon._window import parse_choice
from airflow_provider_centralmon.exceptions import InvalidParameterError

if TYPE_CHECKING:
    from airflow_provider_centralmon._log_search import SearchPlan

DEFAULT_PROGRESS_INTERVAL_S = 30.0

# Schemes of the local file system, whose URLs must name no host and an absolute path.
_LOCAL_SCHEMES = frozenset({"file", "local"})
_EXAMPLE_PATHS = "'file:///data/logs', '/data/logs' or 's3://aws_default@bucket/logs'"

#: Parameters of the mixin that Jinja renders.
STORAGE_TEMPLATE_FIELDS: tuple[str, ...] = ("output_path",)

_module_log = logging.getLogger(__name__)


class StorageExportMixin:
    """Storage parameters and the publish steps shared by the operators that export to storage.

    Put it after :class:`~._log_search.LogSearchMixin` and before ``BaseOperator``; every
    argument it does not know is passed on. Literal values are checked when the DAG is
    parsed; a templated ``output_path`` is checked again once rendered.

    :param output_path: base path of the export, an ``ObjectStoragePath`` or its URL:
        ``file:///data/logs`` (or the absolute path ``/data/logs``),
        ``s3://<conn_id>@bucket/prefix``, ``gs://bucket/prefix``; no query, no fragment, no
        ``..`` segment (templated)
    :param layout: ``partitioned`` (default): the export goes to
        ``<output_path>/<application>/<start>_<end>/<query hash>/``, derived from the query
        and the window; ``exact``: straight into ``output_path``, which the caller keeps
        unique per window (for example by templating it)
    :param compression: ``gzip`` (default) or ``none``
    :param max_part_bytes: uncompressed bytes per part at most, or None for no limit.
        Default 256 MiB.
    :param max_part_records: records per part at most, or None (default) for no limit
    :param spill_dir: existing local directory for the temporary sorted runs of the export,
        checked when the task starts; default: the system's temporary directory
    :param progress_interval: seconds between two progress lines in the task log. Default 30.
    """

    def __init__(
        self,
        *,
        output_path: ObjectStoragePath | str,
        layout: OutputLayout | str = OutputLayout.PARTITIONED,
        compression: Compression | str = Compression.GZIP,
        max_part_bytes: int | None = DEFAULT_MAX_PART_BYTES,
        max_part_records: int | None = None,
        spill_dir: str | None = None,
        progress_interval: float = DEFAULT_PROGRESS_INTERVAL_S,
        **kwargs: Any,
    ) -> None:
        checked_path = _checked_output_path(output_path, rendered=False)
        checked_layout = parse_choice(OutputLayout, layout, "layout")
        checked_compression = parse_choice(Compression, compression, "compression")
        part_bytes = _positive_or_none("max_part_bytes", max_part_bytes)
        part_records = _positive_or_none("max_part_records", max_part_records)
        checked_spill_dir = _checked_spill_dir(spill_dir)
        interval = _checked_interval(progress_interval)

        # The outlet must be known when BaseOperator takes the outlets: only a literal path.
        kwargs["outlets"] = _with_asset(kwargs.get("outlets"), _asset_of(checked_path))
        super().__init__(**kwargs)

        self.output_path = checked_path
        self.layout = checked_layout
        self.compression = checked_compression
        self.max_part_bytes = part_bytes
        self.max_part_records = part_records
        self.spill_dir = checked_spill_dir
        self.progress_interval = interval
        self._published_directory: str | None = None

    # -- what the task announces -------------------------------------------------------------

    def output_asset(self) -> Asset | None:
        """Return the Asset of a literal ``output_path``; None while it is templated.

        The asset URI is the path's URL without the connection id (``s3://conn@bucket/p``
        becomes ``s3://bucket/p``), since the connection is how the data is reached, not
        what it is. An absolute local path becomes a ``file://`` URL.
        """
        return _asset_of(self.output_path)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Describe the written directory as the task's OpenLineage output.

        Called by the OpenLineage provider, when it is installed, after the task succeeded.

        :param task_instance: the finished task instance (unused)
        """
        # Imported by name: the OpenLineage provider is optional, and absent from type checks.
        extractors = importlib.import_module("airflow.providers.openlineage.extractors")
        events = importlib.import_module("openlineage.client.event_v2")
        operator_lineage, dataset = extractors.OperatorLineage, events.Dataset

        written = self._published_directory
        if written is None:
            return operator_lineage()
        parts = urlsplit(asset_uri(written))
        namespace = f"{parts.scheme}://{parts.netloc}" if parts.netloc else parts.scheme
        return operator_lineage(outputs=[dataset(namespace=namespace, name=parts.path or "/")])

    # -- the steps of a run ------------------------------------------------------------------

    def rendered_output_path(self) -> ObjectStoragePath:
        """Return the rendered ``output_path`` as an ``ObjectStoragePath``, checked again.

        Its filesystem is looked up too, so that a scheme Airflow has no filesystem for
        fails here, as an :class:`InvalidParameterError`.
        """
        checked = _checked_output_path(self.output_path, rendered=True)
        return _with_filesystem(checked)

    def check_export_target(self, plan: SearchPlan) -> None:
        """Check that the export can be written; call it before the first API call.

        A mistake in the storage parameters then fails the task before any quota is spent,
        not after the whole window was fetched: a scheme without a filesystem, a file where
        the export's directory (or a parent of it, up to ``output_path``) must go, a
        ``spill_dir`` this worker cannot write to. Raises :class:`InvalidParameterError`.

        :param plan: the run's search plan, from ``LogSearchMixin.plan_search``
        """
        base = self.rendered_output_path()
        directory = export_directory(
            base,
            layout=self.layout,
            window=plan.window,
            query=plan.export_fields(),
            requested_at=datetime.now(UTC),
        )
        blocking = file_in_the_way(directory, base)
        if blocking is not None:
            raise InvalidParameterError(
                f"output_path {str(base)!r}: {blocking!r} exists and is not a directory, "
                f"where the export (layout {self.layout.value!r}) needs one"
            )
        if self.spill_dir is not None:
            _check_writable_directory(self.spill_dir)

    def open_export_writer(
        self,
        plan: SearchPlan,
        *,
        requested_at: datetime | None = None,
    ) -> ExportWriter:
        """Return the writer of this run's export, with progress logged to the task log.

        Use it as a context manager: leaving the block without :meth:`publish_export`
        aborts the export and leaves no complete-looking output.

        :param plan: the run's search plan, from ``LogSearchMixin.plan_search``
        :param requested_at: when the records are requested; names the directory of a raw
            ``time_range`` export. Default: now.
        """
        writer = ExportWriter(
            output_path=self.rendered_output_path(),
            window=plan.window,
            query=plan.export_fields(),
            layout=self.layout,
            compression=self.compression,
            max_part_bytes=self.max_part_bytes,
            max_part_records=self.max_part_records,
            spill_dir=self.spill_dir,
            requested_at=requested_at,
            on_progress=self.log_export_progress,
            progress_interval_s=self.progress_interval,
        )
        self._task_log().info(
            "Exporting %s of %s to %s",
            _describe_window(plan),
            plan.query.application,
            writer.directory,
        )
        return writer

    def publish_export(
        self,
        writer: ExportWriter,
        plan: SearchPlan,
        run_info: Mapping[str, Any] | None = None,
        *,
        context: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Publish the export once every record was added; return the task's XCom value.

        The value is the manifest (as written to ``_manifest.json``) plus ``path``, the
        export directory, and ``run``, what was written to ``_run.json``. It stays small:
        parts are listed, records are not.

        :param writer: the writer from :meth:`open_export_writer`
        :param plan: the plan the records were fetched with
        :param run_info: run provenance for ``_run.json`` (request ids, remaining quota, run
            id): JSON data without secrets
        :param context: the task's context; when given, the asset event's ``extra`` names
            the directory and the record count
        """
        published = writer.publish(window_filter=plan.window_filter, run_info=run_info)
        directory = str(published["path"])
        self._published_directory = directory
        manifest: dict[str, Any] = published["manifest"]
        if context is not None:
            self._annotate_asset_event(context, directory, manifest)
        return {**manifest, "path": directory, "run": published["run"]}

    def log_export_progress(self, snapshot: ProgressSnapshot) -> None:
        """Log one progress line: phase, pages, records, bytes, records per second."""
        self._task_log().info(
            "Export %s: %s pages, %s records (%.1f MiB) received, %s written in %s parts, "
            "%.0f records/s, %.0f s",
            snapshot.phase.value,
            snapshot.pages,
            snapshot.records,
            snapshot.bytes / 2**20,
            snapshot.records_written,
            snapshot.parts_written,
            snapshot.records_per_s,
            snapshot.elapsed_s,
        )

    def _annotate_asset_event(
        self, context: Mapping[str, Any], directory: str, manifest: Mapping[str, Any]
    ) -> None:
        asset = self.output_asset()
        outlet_events = context.get("outlet_events")
        if asset is None or outlet_events is None:
            return
        # A path templated at parse time renders to an asset the task never declared.
        declared = getattr(self, "outlets", None) or []
        if not any(getattr(outlet, "uri", None) == asset.uri for outlet in declared):
            return
        outlet_events[asset].extra = {
            "path": directory,
            "manifest": f"{directory.rstrip('/')}/{MANIFEST_NAME}",
            "records": manifest["counts"]["records"],
            "window": manifest["window"],
        }

    def _task_log(self) -> Any:
        # The operator's own logger (``self.log``, a structlog logger on Airflow 3) when the
        # mixin sits in a task class.
        return getattr(self, "log", _module_log)


# -- helpers ---------------------------------------------------------------------------------


def asset_uri(path: ObjectStoragePath | str) -> str:
    """Return the URI that names ``path`` as an asset: its URL without a connection id.

    :param path: an ``ObjectStoragePath`` or its URL; a bare local path is taken as a file
    """
    text = str(path)
    parts = urlsplit(text)
    if not parts.scheme:
        return urlunsplit(("file", "", text, "", ""))
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _asset_of(output_path: ObjectStoragePath | str) -> Asset | None:
    if known_later(output_path):
        return None
    return Asset(uri=asset_uri(output_path))


def _with_asset(outlets: Any, asset: Asset | None) -> Any:
    if asset is None:
        return outlets
    declared = [] if outlets is None else list(outlets) if isinstance(outlets, list) else [outlets]
    if any(getattr(outlet, "uri", None) == asset.uri for outlet in declared):
        return declared
    return [*declared, asset]


def _checked_output_path(value: object, *, rendered: bool) -> ObjectStoragePath | str:
    if isinstance(value, ObjectStoragePath):
        _check_location(str(value))
        return value
    if not rendered and resolved_at_run_time(value):
        # An XComArg: its value is checked like a template's once the task renders it.
        return value  # type: ignore[return-value]
    if not isinstance(value, str) or not value.strip():
        raise InvalidParameterError(
            "output_path must be an ObjectStoragePath or a URL such as "
            "'s3://aws_default@bucket/logs' or 'file:///data/logs'"
        )
    if is_templated(value):
        if rendered:
            raise InvalidParameterError(f"output_path still holds a template: {value!r}")
        _check_template_start(value)
        return value
    _check_location(value)
    return value


def _check_location(text: str) -> None:
    """Refuse an output path whose meaning depends on the worker or the Airflow version."""
    if "?" in text:
        raise InvalidParameterError(
            "output_path must not carry a query string; pass storage options through the connection"
        )
    if "#" in text:
        # The file system would keep it in the directory name, the asset URI would drop it.
        raise InvalidParameterError(f"output_path must not carry a fragment ('#'): {text!r}")

    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if not scheme and not text.startswith("/"):
        # Airflow 3 resolves a relative path against the worker's working directory,
        # Airflow 2.11 against the root; neither matches the declared asset.
        raise InvalidParameterError(
            f"output_path needs a scheme, or an absolute local path: {text!r}; write for "
            f"example {_EXAMPLE_PATHS}"
        )
    if scheme in _LOCAL_SCHEMES and (parts.netloc or not parts.path.startswith("/")):
        # 'file://data/logs' would be taken as the relative path 'data/logs'.
        absolute = "file:///" + "/".join(filter(None, (parts.netloc, parts.path.lstrip("/"))))
        raise InvalidParameterError(
            f"output_path {text!r}: a local file URL names no host and needs an absolute path "
            f"after three slashes, such as {absolute!r}"
        )
    if ".." in parts.path.split("/"):
        raise InvalidParameterError(f"output_path must not hold '..' segments: {text!r}")


def _check_template_start(value: str) -> None:
    # A scheme ends before the first '/': literal text up to there without a ':' cannot
    # render into a URL or an absolute path, whatever the expressions give.
    literal = re.split(r"\{[{%]", value, maxsplit=1)[0]
    head, slash, _ = literal.partition("/")
    if slash and head and ":" not in head:
        raise InvalidParameterError(
            f"output_path needs a scheme, or an absolute local path: {value!r}; write for "
            f"example {_EXAMPLE_PATHS}"
        )


def _with_filesystem(value: ObjectStoragePath | str) -> ObjectStoragePath:
    scheme = urlsplit(str(value)).scheme or "file"
    try:
        path = value if isinstance(value, ObjectStoragePath) else ObjectStoragePath(value)
        # Airflow looks the file system up lazily, on first use: reading the attribute is
        # the check (hence noqa B018, "useless expression").
        path.fs  # noqa: B018
    except (ValueError, ImportError) as error:
        raise InvalidParameterError(
            f"output_path {str(value)!r}: Airflow has no filesystem for the scheme {scheme!r} "
            f"({error}); install the provider that brings it, for example the 's3' extra "
            "for s3://"
        ) from error
    return path


def _positive_or_none(name: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidParameterError(f"{name} must be a positive whole number or None: {value!r}")
    return value


def _checked_spill_dir(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidParameterError("spill_dir must be a local directory path or None")
    return value


def _check_writable_directory(spill_dir: str) -> None:
    # Sorted runs spill only past tens of thousands of records, once most of the window was
    # fetched and its quota spent: a directory that cannot take them must fail first.
    try:
        probe = tempfile.mkdtemp(prefix="centralmon-sort-check-", dir=spill_dir)
        os.rmdir(probe)
    except OSError as error:
        raise InvalidParameterError(
            f"spill_dir {spill_dir!r} must be an existing directory this worker can write to "
            f"({error.strerror or error})"
        ) from error


def _checked_interval(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise InvalidParameterError(
            f"progress_interval must be a positive number of seconds: {value!r}"
        )
    return float(value)


def _describe_window(plan: SearchPlan) -> str:
    described = plan.window.describe()
    if "time_range" in described:
        return f"time_range {described['time_range']!r}"
    return f"[{described['start']}, {described['end']})"
