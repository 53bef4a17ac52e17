"""Records and a complete export run shared by the output tests."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow_provider_centralmon._output import ExportWriter
from airflow_provider_centralmon._records import unwrap_record
from airflow_provider_centralmon._window import ExportWindow, WindowFilter

START = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
END = datetime(2026, 12, 1, 11, 0, tzinfo=UTC)
WINDOW = ExportWindow(start=START, end=END)
QUERY = {"application": "atr", "domain": "shop.example", "filters": {"status": "error"}}


def make_hits(count: int, *, seed: int = 1) -> list[dict[str, Any]]:
    """Hits spread over the window and 10 minutes either side, some sharing a timestamp."""
    rng = random.Random(seed)
    hits = []
    for number in range(count):
        offset = timedelta(seconds=rng.randrange(-600, 4200), milliseconds=rng.choice([0, 5]))
        source = {
            "@timestamp": (START + offset).isoformat().replace("+00:00", "Z"),
            "level": rng.choice(["info", "warn", "error"]),
            "message": f"event {number} " + "x" * rng.randrange(0, 80),
        }
        hits.append({"_index": "logs-1", "_id": f"doc-{number}", "_source": source})
    return hits


def read_tree(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def export(
    hits: Iterable[Mapping[str, Any]],
    output: Path,
    *,
    window: ExportWindow = WINDOW,
    query: Mapping[str, Any] = QUERY,
    run_info: Mapping[str, Any] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Run hits through a window filter into a writer under ``output``, and publish."""
    window_filter = WindowFilter(window=window)
    with ExportWriter(
        output_path=f"file://{output}", window=window, query=query, **options
    ) as writer:
        for hit in hits:
            item = unwrap_record(hit)
            time_us = window_filter.record_time(item.source)
            if window_filter.admit(time_us, record_id=item.record_id):
                writer.add(item.record, time_us=time_us, record_id=item.record_id)
        return writer.publish(window_filter=window_filter, run_info=run_info)
