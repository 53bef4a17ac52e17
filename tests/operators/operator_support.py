"""Helpers of the operator tests: contexts, simulator wiring, export readers."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_centralmon import _log_search
from airflow_provider_centralmon.simulator.handle import SimulatorHandle


def attach(sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch) -> SimulatorHandle:
    """Point the default connection at ``sim`` and run the operators on its clock."""
    sim.use_as_connection(monkeypatch)
    monkeypatch.setattr(_log_search, "utc_now", sim.now)
    return sim


class OutletEvents(dict[Any, SimpleNamespace]):
    """Stands in for Airflow's outlet event accessors: an event per asset, with ``extra``."""

    def __missing__(self, asset: Any) -> SimpleNamespace:
        event = self[asset] = SimpleNamespace(extra={})
        return event


def make_context(
    *,
    interval_start: datetime | None = None,
    interval_end: datetime | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Return a task context with the keys the operators read on both Airflow versions."""
    task_instance = SimpleNamespace(
        dag_id="centralmon_export", task_id="export", run_id="scheduled__test", try_number=1
    )
    return {
        "data_interval_start": interval_start,
        "data_interval_end": interval_end,
        "logical_date": interval_start,
        "run_id": task_instance.run_id,
        "ti": task_instance,
        "task_instance": task_instance,
        "params": {},
        "outlet_events": OutletEvents(),
        **extra,
    }


def read_tree(root: Path) -> dict[str, bytes]:
    """Return every file under ``root`` by relative path."""
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def export_dir(result: dict[str, Any]) -> Path:
    """Return the local directory of an export from the operator's XCom value."""
    path = str(result["path"])
    assert path.startswith("file://"), path
    return Path(path.removeprefix("file://"))


def read_lines(directory: Path, manifest: dict[str, Any]) -> Iterator[bytes]:
    """Yield the JSON lines of an export's parts, in order, as the manifest lists them."""
    for part in manifest["parts"]:
        raw = (directory / part["name"]).read_bytes()
        data = gzip.decompress(raw) if part["name"].endswith(".gz") else raw
        yield from data.splitlines()


def read_records(directory: Path, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the records of an export, decoded."""
    return [json.loads(line) for line in read_lines(directory, manifest)]


def record_secrets(sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Return a list that collects every access token and scroll id the simulator hands out.

    It starts with the client secret.
    """
    seen = [sim.client_secret]
    auth, cursors = sim.state.auth, sim.state.cursors
    issue, open_cursor, advance = auth.issue, cursors.open, cursors.advance

    def recording_issue(*args: Any, **kwargs: Any) -> dict[str, Any]:
        reply = issue(*args, **kwargs)
        seen.append(reply["access_token"])
        return reply

    def recording_open(*args: Any, **kwargs: Any) -> Any:
        page = open_cursor(*args, **kwargs)
        seen.append(page.scroll_id)
        return page

    def recording_advance(*args: Any, **kwargs: Any) -> Any:
        page = advance(*args, **kwargs)
        if page is not None:
            seen.append(page.scroll_id)
        return page

    monkeypatch.setattr(auth, "issue", recording_issue)
    monkeypatch.setattr(cursors, "open", recording_open)
    monkeypatch.setattr(cursors, "advance", recording_advance)
    return seen


def xcom_arg() -> Any:
    """Return an XComArg of a task in a throwaway DAG, on Airflow 2.11 and 3."""
    try:
        from airflow.sdk import DAG, XComArg
    except ImportError:
        from airflow.models.dag import DAG
        from airflow.models.xcom_arg import XComArg

    try:
        from airflow.providers.standard.operators.empty import EmptyOperator
    except ImportError:
        from airflow.operators.empty import EmptyOperator

    with DAG("xcom_source", schedule=None):
        return XComArg(EmptyOperator(task_id="upstream"))
