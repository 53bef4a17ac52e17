from __future__ import annotations

import gzip
import hashlib
import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from export_helpers import END, QUERY, START, WINDOW, export, make_hits, read_tree

from airflow_provider_centralmon import __version__
from airflow_provider_centralmon._compat import ObjectStoragePath
from airflow_provider_centralmon._output import ExportPhase, ExportWriter, ProgressSnapshot
from airflow_provider_centralmon._window import ExportWindow
from airflow_provider_centralmon.exceptions import InvalidParameterError

EXPORT_DIR = "atr/20261201T100000Z_20261201T110000Z"


def export_dir(output: Path) -> Path:
    (directory,) = (output / EXPORT_DIR).iterdir()
    return directory


def part_lines(directory: Path) -> list[bytes]:
    manifest = json.loads((directory / "_manifest.json").read_bytes())
    lines: list[bytes] = []
    for part in manifest["parts"]:
        data = (directory / part["name"]).read_bytes()
        if part["name"].endswith(".gz"):
            data = gzip.decompress(data)
        lines.extend(data.splitlines(keepends=True))
    return lines


def test_shuffled_inputs_give_byte_identical_parts_and_manifest(tmp_path: Path) -> None:
    hits = make_hits(600)
    trees = []
    # No spill at all; a few runs; more runs than are ever open at once; compressed runs.
    sort_settings = [
        {"sort_buffer_records": 10_000},
        {"sort_buffer_records": 17},
        {"sort_buffer_records": 2},
        {"sort_buffer_records": 5, "compress_spills": True},
    ]
    for seed, settings in enumerate(sort_settings):
        shuffled = random.Random(seed).sample(hits, len(hits))
        output = tmp_path / f"run-{seed}"
        export(shuffled, output, max_part_records=100, **settings)
        trees.append({k: v for k, v in read_tree(output).items() if not k.endswith("_run.json")})

    assert all(tree == trees[0] for tree in trees[1:])
    assert sum(name.endswith(".jsonl.gz") for name in trees[0]) > 1


def test_records_are_sorted_by_time_then_id_and_keep_their_key_order(tmp_path: Path) -> None:
    same_time = "2026-12-01T10:30:00Z"
    hits = [
        {"_id": "b", "_source": {"z": 1, "@timestamp": same_time}},
        {"_id": "a", "_source": {"@timestamp": same_time, "z": 2}},
        {"_id": "c", "_source": {"@timestamp": "2026-12-01T10:29:59.999999Z", "z": 3}},
        {"_id": "d", "_source": {"z": 4}},
    ]

    result = export(hits, tmp_path)

    assert part_lines(export_dir(tmp_path)) == [
        b'{"@timestamp":"2026-12-01T10:29:59.999999Z","z":3}\n',
        b'{"@timestamp":"2026-12-01T10:30:00Z","z":2}\n',
        b'{"z":1,"@timestamp":"2026-12-01T10:30:00Z"}\n',
        b'{"z":4}\n',
    ]
    assert result["manifest"]["counts"] == {"records": 4, "untimed": 1}


def test_many_small_parts_hold_every_record_once(tmp_path: Path) -> None:
    hits = make_hits(500)

    result = export(hits, tmp_path, max_part_records=7, sort_buffer_records=50)

    manifest = result["manifest"]
    in_window = result["run"]["export"]["window_filter"]["in_window"]
    assert manifest["counts"] == {"records": in_window, "untimed": 0}
    assert len(manifest["parts"]) == -(-in_window // 7)
    assert [part["records"] for part in manifest["parts"][:-1]] == [7] * (in_window // 7)
    lines = part_lines(export_dir(tmp_path))
    times = [datetime.fromisoformat(json.loads(line)["@timestamp"]) for line in lines]
    assert times == sorted(times)
    assert len({json.loads(line)["message"] for line in lines}) == in_window


def test_part_byte_limit_counts_uncompressed_bytes(tmp_path: Path) -> None:
    result = export(make_hits(300), tmp_path, max_part_bytes=2_000, compression="none")

    parts = result["manifest"]["parts"]
    assert len(parts) > 5
    assert all(part["uncompressed_bytes"] <= 2_000 for part in parts)
    assert all(part["bytes"] == part["uncompressed_bytes"] for part in parts)
    assert all(part["name"].endswith(".jsonl") for part in parts)


def test_manifest_describes_the_parts_exactly(tmp_path: Path) -> None:
    result = export(make_hits(200), tmp_path, max_part_records=40)

    directory = export_dir(tmp_path)
    manifest = json.loads((directory / "_manifest.json").read_bytes())
    assert manifest == result["manifest"]
    for part in manifest["parts"]:
        data = (directory / part["name"]).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (part["bytes"], part["sha256"])
        # gzip header: no file name flag, modification time zero.
        assert data[3] & 0x08 == 0
        assert data[4:8] == b"\0\0\0\0"
    assert manifest["bytes"] == sum(part["bytes"] for part in manifest["parts"])
    assert manifest["window"] == {"start": "2026-12-01T10:00:00Z", "end": "2026-12-01T11:00:00Z"}
    assert manifest["query"] == QUERY
    assert manifest["provider_version"] == __version__
    assert (manifest["schema_version"], manifest["format"], manifest["compression"]) == (
        1,
        "jsonl",
        "gzip",
    )
    assert manifest["run_file"] == "_run.json"
    assert manifest["record_time"] == {"timestamp_field": "@timestamp", "untimed_policy": "keep"}


def test_exact_duplicates_are_dropped_and_counted(tmp_path: Path) -> None:
    hits = make_hits(300)
    inside = {"@timestamp": "2026-12-01T10:30:00Z", "message": "same text"}
    # Same content under two ids: two distinct documents, both kept.
    twins = [{"_id": "twin-1", "_source": inside}, {"_id": "twin-2", "_source": inside}]

    result = export([*hits, *twins, *hits[::-1]], tmp_path, sort_buffer_records=40)

    received = result["run"]["export"]
    originals_in_window = (received["window_filter"]["in_window"] - len(twins)) // 2
    assert received["duplicates_dropped"] == originals_in_window
    records = result["manifest"]["counts"]["records"]
    assert records == originals_in_window + len(twins)
    assert len(part_lines(export_dir(tmp_path))) == records


def test_rerun_replaces_the_output_and_removes_extra_parts(tmp_path: Path) -> None:
    hits = make_hits(400)
    export(hits, tmp_path, max_part_records=20, run_info={"attempt": 1})
    directory = export_dir(tmp_path)
    parts_before = len(list(directory.glob("part-*")))

    second = export(hits[:50], tmp_path, max_part_records=20, run_info={"attempt": 2})

    names = sorted(path.name for path in directory.iterdir())
    expected_parts = [part["name"] for part in second["manifest"]["parts"]]
    assert len(expected_parts) < parts_before
    assert names == sorted([*expected_parts, "_manifest.json", "_run.json"])
    assert len(part_lines(directory)) == second["manifest"]["counts"]["records"] > 0
    assert json.loads((directory / "_run.json").read_bytes())["attempt"] == 2


def test_rerun_with_other_compression_removes_the_old_parts(tmp_path: Path) -> None:
    export(make_hits(100), tmp_path)

    export(make_hits(100), tmp_path, compression="none")

    assert sorted(p.name for p in export_dir(tmp_path).glob("part-*")) == ["part-00000.jsonl"]


def test_run_file_holds_run_provenance_and_publish_returns_it(tmp_path: Path) -> None:
    result = export(make_hits(50), tmp_path, run_info={"request_ids": ["r-1"], "run_id": "m1"})

    run = json.loads((export_dir(tmp_path) / "_run.json").read_bytes())
    assert run == result["run"]
    assert (run["request_ids"], run["run_id"]) == (["r-1"], "m1")
    assert run["export"]["records_received"] == run["export"]["window_filter"]["in_window"]
    assert result["path"] == f"file://{export_dir(tmp_path)}"


def test_an_empty_window_publishes_a_manifest_without_parts(tmp_path: Path) -> None:
    result = export([], tmp_path)

    assert result["manifest"]["parts"] == []
    assert result["manifest"]["counts"]["records"] == 0
    assert sorted(p.name for p in export_dir(tmp_path).iterdir()) == ["_manifest.json", "_run.json"]


class TestLayout:
    def test_query_hash_ignores_key_order_and_time_range(self, tmp_path: Path) -> None:
        reordered = dict(reversed(list(QUERY.items())))

        first = ExportWriter(output_path=f"file://{tmp_path}", window=WINDOW, query=QUERY)
        second = ExportWriter(
            output_path=f"file://{tmp_path}",
            window=WINDOW,
            query={**reordered, "time_range": "now-5m"},
        )
        other = ExportWriter(
            output_path=f"file://{tmp_path}", window=WINDOW, query={**QUERY, "domain": "b"}
        )

        assert first.directory == second.directory != other.directory
        assert str(first.directory).startswith(f"file://{tmp_path}/{EXPORT_DIR}/")
        for writer in (first, second, other):
            writer.abort()

    def test_exact_layout_writes_into_the_output_path(self, tmp_path: Path) -> None:
        export(make_hits(20), tmp_path / "mine", layout="exact")

        assert (tmp_path / "mine" / "_manifest.json").is_file()

    def test_an_object_storage_path_is_accepted(self, tmp_path: Path) -> None:
        base = ObjectStoragePath(f"file://{tmp_path}")

        with ExportWriter(output_path=base, window=WINDOW, query=QUERY) as writer:
            writer.add({"a": 1}, time_us=None)
            result = writer.publish()

        assert result["manifest"]["counts"]["records"] == 1
        assert result["path"].startswith(f"file://{tmp_path}/{EXPORT_DIR}/")

    def test_raw_time_range_is_named_after_the_request(self, tmp_path: Path) -> None:
        requested_at = datetime(2026, 12, 3, 12, 0, 5, tzinfo=UTC)

        writer = ExportWriter(
            output_path=f"file://{tmp_path}",
            window=ExportWindow(time_range="now-1d/d"),
            query={"application": "quasar"},
            requested_at=requested_at,
        )

        assert "/quasar/requested-20261203T120005Z_now-1d_d/" in str(writer.directory)
        writer.abort()

    def test_partitioned_layout_needs_an_application(self, tmp_path: Path) -> None:
        with pytest.raises(InvalidParameterError, match="needs the query's 'application'"):
            ExportWriter(output_path=f"file://{tmp_path}", window=WINDOW, query={"domain": "d"})

    @pytest.mark.parametrize(
        ("option", "value", "message"),
        [
            ("compression", "zstd", "use one of 'gzip', 'none'"),
            ("layout", "flat", "use one of 'partitioned', 'exact'"),
            ("max_part_bytes", 0, "max_part_bytes must be a positive integer or None"),
            ("sort_buffer_records", None, "sort_buffer_records must be a positive integer"),
        ],
    )
    def test_bad_options_are_refused(
        self, tmp_path: Path, option: str, value: object, message: str
    ) -> None:
        with pytest.raises(InvalidParameterError, match=message):
            ExportWriter(
                output_path=f"file://{tmp_path}", window=WINDOW, query=QUERY, **{option: value}
            )


def test_progress_is_reported_at_the_interval_of_the_injected_clock(tmp_path: Path) -> None:
    now = [0.0]
    reports: list[ProgressSnapshot] = []
    writer = ExportWriter(
        output_path=f"file://{tmp_path}",
        window=WINDOW,
        query=QUERY,
        on_progress=reports.append,
        progress_interval_s=10.0,
        clock=lambda: now[0],
    )
    record: dict[str, Any] = {"@timestamp": START.isoformat()}

    for second in range(25):
        now[0] = float(second)
        writer.add_page()
        writer.add(record, time_us=second)
    result = writer.publish()

    collecting = [r for r in reports if r.phase is ExportPhase.COLLECTING]
    assert [(r.records, r.pages, r.elapsed_s) for r in collecting] == [
        (11, 11, 10.0),
        (21, 21, 20.0),
    ]
    assert collecting[-1].records_per_s == pytest.approx(21 / 20)
    assert [r.phase for r in reports[2:]] == [
        ExportPhase.WRITING,
        ExportPhase.PUBLISHING,
        ExportPhase.PUBLISHED,
    ]
    assert reports[-1].records_written == result["manifest"]["counts"]["records"] == 25
    assert END > START
