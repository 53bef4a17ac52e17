"""Helpers of the batch, sensor and trigger tests: contexts, clocks, exports, secrets."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_centralmon import _log_search
from airflow_provider_centralmon._quota_memory import forget_quotas
from airflow_provider_centralmon.hooks import _core, _token
from airflow_provider_centralmon.simulator.handle import SimulatorHandle

BATCH = "/v1/logs/batch"
BATCH_URLS = "/v1/logs/batch/urls"
SCROLL = "/v2/logs/scroll"
FILES = "/_s3/cm-api-logs"


def reset_process_state() -> None:
    """Forget the process-wide token cache, remembered routes and quota readings."""
    _token.clear_token_cache()
    _core._found_routes.clear()
    forget_quotas()


def attach(sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch, **extra: Any) -> SimulatorHandle:
    """Point the default connection at ``sim`` and run the tasks on the simulator's clock."""
    sim.use_as_connection(monkeypatch, **extra)
    monkeypatch.setattr(_log_search, "utc_now", sim.now)
    return sim


def past_window(sim: SimulatorHandle, minutes: int, *, gap: int = 5) -> tuple[datetime, datetime]:
    """Return a window of ``minutes`` ending ``gap`` minutes before the simulator's now."""
    end = sim.now().replace(second=0, microsecond=0) - timedelta(minutes=gap)
    return end - timedelta(minutes=minutes), end


class FakeTaskInstance:
    """The task instance attributes and the XCom push the tasks use, recorded."""

    def __init__(self, *, run_id: str = "manual__test", try_number: int = 1) -> None:
        self.dag_id = "centralmon_batch"
        self.task_id = "export"
        self.run_id = run_id
        self.map_index = -1
        self.try_number = try_number
        # Read by Airflow's ResumableJobMixin for its metrics.
        self.stats_tags: dict[str, str] = {}
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


def make_context(ti: FakeTaskInstance | None = None, **extra: Any) -> dict[str, Any]:
    """Return a task context with what the tasks read, on both Airflow versions."""
    task_instance = ti or FakeTaskInstance()
    return {
        "ti": task_instance,
        "task_instance": task_instance,
        "run_id": task_instance.run_id,
        **extra,
    }


def calls(sim: SimulatorHandle, route: str) -> int:
    """Return the calls the simulator served on ``route`` since its last reset."""
    return int(sim.counters()["routes"].get(route, {}).get("calls", 0))


def truth(sim: SimulatorHandle, start: datetime, end: datetime, **equals: Any) -> list[Any]:
    """Return the ``_source`` of every ``atr`` record of the window, in export order."""
    hits = sim.records_between(start, end, "atr", **equals)
    hits.sort(key=lambda hit: (hit["_source"]["@timestamp"], hit["_id"]))
    return [hit["_source"] for hit in hits]


def export_directory(result: dict[str, Any]) -> Path:
    """Return the local directory of an export from the task's return value."""
    path = str(result["path"])
    assert path.startswith("file://"), path
    return Path(path.removeprefix("file://"))


def iter_exported(result: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Yield the exported records, in order, as the manifest lists the parts."""
    directory = export_directory(result)
    for part in result["parts"]:
        raw = (directory / part["name"]).read_bytes()
        data = gzip.decompress(raw) if part["name"].endswith(".gz") else raw
        for line in data.splitlines():
            yield json.loads(line)


def withhold_urls(
    sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch, *, polls: int
) -> list[int]:
    """Make the urls route list every file ready and completed, but without its URL, at first.

    The first ``polls`` answers carry ``presigned_url: null``; later ones are unchanged.
    Returns the list of poll numbers served, growing with each poll.
    """
    served: list[int] = []
    describe = sim.state.batches.describe

    def without_urls(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        entries = describe(*args, **kwargs)
        served.append(len(served) + 1)
        if len(served) <= polls:
            for entry in entries:
                entry.update(ready=True, status="completed", presigned_url=None)
        return entries

    monkeypatch.setattr(sim.state.batches, "describe", without_urls)
    return served


def list_files_gradually(sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make the urls route list an export's files as if produced one by one, each ready.

    The n-th answer about an export lists its first n files. Returns how many files each
    answer listed, growing with each poll.
    """
    listed: list[int] = []
    describe = sim.state.batches.describe

    def gradually(job: Any, base_url: str, now: datetime) -> list[dict[str, Any]]:
        entries = describe(job, base_url, now)
        listed.append(min(job.polls, len(entries)))
        return entries[: job.polls]

    monkeypatch.setattr(sim.state.batches, "describe", gradually)
    return listed


def record_secrets(sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Collect every secret the simulator hands out from now on, starting with the client's.

    Access tokens, scroll ids, batch tokens and the query strings of presigned URLs (their
    signatures).
    """
    seen = [sim.client_secret]
    auth, batches, cursors = sim.state.auth, sim.state.batches, sim.state.cursors
    issue, submit, sign = auth.issue, batches.submit, batches._sign_url
    open_cursor, advance = cursors.open, cursors.advance

    def recording_issue(*args: Any, **kwargs: Any) -> dict[str, Any]:
        reply = issue(*args, **kwargs)
        seen.append(reply["access_token"])
        return reply

    def recording_submit(*args: Any, **kwargs: Any) -> str:
        token = submit(*args, **kwargs)
        seen.append(token)
        return token

    def recording_sign(*args: Any, **kwargs: Any) -> str:
        url = sign(*args, **kwargs)
        seen.append(url.split("?", 1)[1])
        seen.append(url.split("X-Amz-Signature=", 1)[1])
        return url

    def recording_open(*args: Any, **kwargs: Any) -> Any:
        page = open_cursor(*args, **kwargs)
        seen.append(page.scroll_id)
        return page

    def recording_advance(*args: Any, **kwargs: Any) -> Any:
        page = advance(*args, **kwargs)
        if page is not None:
            seen.append(page.scroll_id)
        return page

    monkeypatch.setattr(cursors, "open", recording_open)
    monkeypatch.setattr(cursors, "advance", recording_advance)
    monkeypatch.setattr(auth, "issue", recording_issue)
    monkeypatch.setattr(batches, "submit", recording_submit)
    monkeypatch.setattr(batches, "_sign_url", recording_sign)
    return seen


def leaked(secrets: list[str], *texts: object) -> list[str]:
    """Return the secrets found in any of ``texts`` (dumped as JSON when not a string)."""
    dumped = [text if isinstance(text, str) else json.dumps(text, default=repr) for text in texts]
    return [secret for secret in secrets if any(secret in text for text in dumped)]


class OutletEvents(dict[Any, Any]):
    """Stands in for Airflow's outlet event accessors: an event per asset, with ``extra``."""

    def __missing__(self, asset: Any) -> Any:
        event = self[asset] = SimpleNamespace(extra={})
        return event
