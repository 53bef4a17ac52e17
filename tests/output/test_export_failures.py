from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from export_helpers import QUERY, WINDOW, export, make_hits, read_tree

from airflow_provider_centralmon._output import ExportPhase, ExportWriter, ProgressSnapshot
from airflow_provider_centralmon._output._store import Store

HELPERS_DIR = Path(__file__).parent


class Boom(Exception):
    pass


def manifests(root: Path) -> list[Path]:
    return sorted(root.rglob("_manifest.json"))


def staging_entries(root: Path) -> list[Path]:
    return sorted(root.rglob("_staging-*"))


def assert_consistent(directory: Path) -> dict[str, object]:
    """The manifest names exactly the parts present, with their sizes and hashes."""
    manifest = json.loads((directory / "_manifest.json").read_bytes())
    present = sorted(path.name for path in directory.glob("part-*"))
    assert present == [part["name"] for part in manifest["parts"]]
    for part in manifest["parts"]:
        data = (directory / part["name"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == part["sha256"]
    assert not list(directory.glob("_staging-*"))
    return manifest


def collect_then_fail(output: Path, spill: Path) -> None:
    with ExportWriter(
        output_path=f"file://{output}",
        window=WINDOW,
        query=QUERY,
        sort_buffer_records=10,
        spill_dir=str(spill),
    ) as writer:
        for number, hit in enumerate(make_hits(100)):
            writer.add(hit["_source"], time_us=number, record_id=hit["_id"])
        raise Boom


def test_error_while_collecting_leaves_nothing(tmp_path: Path) -> None:
    output, spill = tmp_path / "out", tmp_path / "spill"
    spill.mkdir()

    with pytest.raises(Boom):
        collect_then_fail(output, spill)

    assert not output.exists()
    assert list(spill.iterdir()) == []


def test_error_while_writing_parts_leaves_no_manifest_and_the_next_run_succeeds(
    tmp_path: Path,
) -> None:
    def fail_after_two_parts(snapshot: ProgressSnapshot) -> None:
        if snapshot.phase is ExportPhase.WRITING and snapshot.parts_written >= 2:
            raise Boom

    with pytest.raises(Boom):
        export(
            make_hits(300),
            tmp_path,
            max_part_records=10,
            on_progress=fail_after_two_parts,
            progress_interval_s=0,
        )

    assert manifests(tmp_path) == []
    assert not list(tmp_path.rglob("part-*"))
    assert staging_entries(tmp_path) == []

    result = export(make_hits(300), tmp_path, max_part_records=10)
    assert assert_consistent(Path(result["path"].removeprefix("file://"))) == result["manifest"]


def test_storage_error_after_moving_parts_leaves_no_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = export(make_hits(300), tmp_path, max_part_records=10)
    directory = Path(first["path"].removeprefix("file://"))
    real_write_bytes = Store.write_bytes

    def unreachable_storage(store: Store, name: str, data: bytes) -> None:
        raise OSError("storage went away")

    monkeypatch.setattr(Store, "write_bytes", unreachable_storage)
    with pytest.raises(OSError, match="storage went away"):
        export(make_hits(120), tmp_path, max_part_records=10)

    assert manifests(tmp_path) == []
    assert staging_entries(tmp_path) == []

    monkeypatch.setattr(Store, "write_bytes", real_write_bytes)
    second = export(make_hits(120), tmp_path, max_part_records=10)
    assert assert_consistent(directory) == second["manifest"]


KILLED_RUN = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, sys.argv[2])
    from export_helpers import export, make_hits

    def die_mid_write(snapshot):
        if snapshot.phase.value == "writing" and snapshot.parts_written >= 2:
            os.kill(os.getpid(), signal.SIGKILL)

    export(make_hits(int(sys.argv[3]), seed=7), sys.argv[1], max_part_records=10,
           sort_buffer_records=25, spill_dir=sys.argv[4], on_progress=die_mid_write,
           progress_interval_s=0)
    """
)


def run_killed_export(output: Path, records: int, spill: Path) -> None:
    spill.mkdir(exist_ok=True)
    arguments = [str(output), str(HELPERS_DIR), str(records), str(spill)]
    completed = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, *arguments],
        env=os.environ.copy(),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == -signal.SIGKILL, completed.stderr.decode()[-2000:]


def test_run_killed_mid_write_leaves_only_staging_which_the_next_run_removes(
    tmp_path: Path,
) -> None:
    output = tmp_path / "out"

    run_killed_export(output, 300, tmp_path / "spill")

    assert manifests(output) == []
    (staging,) = staging_entries(output)
    assert list(staging.glob("part-*"))
    assert not list(staging.parent.glob("part-*"))

    result = export(make_hits(300, seed=7), output, max_part_records=10)

    assert assert_consistent(staging.parent) == result["manifest"]
    assert staging_entries(output) == []


def test_run_killed_over_a_complete_export_leaves_that_export_intact(tmp_path: Path) -> None:
    output = tmp_path / "out"
    first = export(make_hits(100, seed=7), output, max_part_records=10)
    before = read_tree(output)

    run_killed_export(output, 300, tmp_path / "spill")

    after = {k: v for k, v in read_tree(output).items() if "_staging-" not in k}
    assert after == before
    assert staging_entries(output)
    directory = Path(first["path"].removeprefix("file://"))
    assert json.loads((directory / "_manifest.json").read_bytes()) == first["manifest"]
