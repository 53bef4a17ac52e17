"""CentralMonitoringLogsToStorageOperator on small windows: parameters, layout, publishing."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fsspec.implementations.memory import MemoryFileSystem
from operator_support import (
    attach,
    export_dir,
    make_context,
    read_records,
    read_tree,
    record_secrets,
)

from airflow_provider_centralmon._compat import Asset, ObjectStoragePath
from airflow_provider_centralmon._output import ExportPhase, ExportWriter, ProgressSnapshot
from airflow_provider_centralmon._storage_export import asset_uri
from airflow_provider_centralmon.exceptions import CentralMonitoringError, InvalidParameterError
from airflow_provider_centralmon.operators.logs import CentralMonitoringLogsToStorageOperator
from airflow_provider_centralmon.simulator.clock import ManualClock
from airflow_provider_centralmon.simulator.handle import SimulatorHandle

try:
    from airflow.sdk.io import attach as attach_store
except ImportError:  # Airflow 2.11
    from airflow.io.store import attach as attach_store  # type: ignore[no-redef]

SCROLL = "/v2/logs/scroll"


def storage_operator(
    output: Path | str | ObjectStoragePath, **kwargs: Any
) -> CentralMonitoringLogsToStorageOperator:
    # ObjectStoragePath derives from pathlib.Path with universal-pathlib 0.2 (Airflow 2.11).
    local = isinstance(output, Path) and not isinstance(output, ObjectStoragePath)
    path = f"file://{output}" if local else output
    return CentralMonitoringLogsToStorageOperator(
        **{"task_id": "export", "application": "atr", "output_path": path, **kwargs}
    )


def window(sim: SimulatorHandle, minutes: int = 60) -> tuple[datetime, datetime]:
    end = sim.now() - timedelta(minutes=2)
    return end - timedelta(minutes=minutes), end


def sources(sim: SimulatorHandle, start: datetime, end: datetime) -> list[dict[str, Any]]:
    return [hit["_source"] for hit in sim.records_between(start, end, "atr")]


# -- parameters ------------------------------------------------------------------------------

STORAGE_ERRORS = [
    ({"output_path": ""}, "output_path must be an ObjectStoragePath or a URL"),
    ({"output_path": 42}, "output_path must be an ObjectStoragePath or a URL"),
    ({"output_path": "s3://conn@bucket/logs?acl=x"}, "must not carry a query string"),
    ({"output_path": "file:///tmp/out?"}, "must not carry a query string"),
    ({"output_path": "rel-out"}, "needs a scheme"),
    ({"output_path": "data/logs/{{ ds }}"}, "needs a scheme"),
    ({"output_path": "file:///tmp/out#frag"}, "must not carry a fragment"),
    ({"output_path": "/tmp/out#"}, "must not carry a fragment"),
    ({"output_path": "file://data/logs"}, "'file:///data/logs'"),
    ({"output_path": "file:data/logs"}, "absolute path"),
    ({"output_path": "file:///tmp/a/../b"}, "'..'"),
    ({"layout": "flat"}, "layout 'flat' is unknown"),
    ({"compression": "zstd"}, "compression 'zstd' is unknown"),
    ({"max_part_bytes": 0}, "max_part_bytes must be a positive whole number or None"),
    ({"max_part_records": -5}, "max_part_records must be a positive whole number or None"),
    ({"max_part_records": 1.5}, "max_part_records must be a positive whole number or None"),
    ({"spill_dir": ""}, "spill_dir must be a local directory path or None"),
    ({"progress_interval": 0}, "progress_interval must be a positive number of seconds"),
    ({"progress_interval": "30"}, "progress_interval must be a positive number of seconds"),
]


@pytest.mark.parametrize(("kwargs", "message"), STORAGE_ERRORS)
def test_a_bad_storage_parameter_fails_when_the_dag_is_parsed(
    kwargs: dict[str, Any], message: str
) -> None:
    arguments = {"output_path": "file:///tmp/out", **kwargs}

    with pytest.raises(InvalidParameterError) as raised:
        CentralMonitoringLogsToStorageOperator(task_id="export", application="atr", **arguments)

    assert message in str(raised.value)


def test_search_parameters_are_checked_too() -> None:
    with pytest.raises(InvalidParameterError, match="eventops"):
        storage_operator("file:///tmp/out", tenant="a")


@pytest.mark.parametrize(
    ("path", "uri"),
    [
        ("s3://aws_default@my-bucket/logs/atr", "s3://my-bucket/logs/atr"),
        ("gs://bucket/prefix", "gs://bucket/prefix"),
        ("file:///data/logs", "file:///data/logs"),
        ("/data/logs", "file:///data/logs"),
    ],
)
def test_a_literal_output_path_is_declared_as_an_asset_outlet(path: str, uri: str) -> None:
    task = storage_operator(path)

    assert asset_uri(path) == uri
    assert [outlet.uri for outlet in task.outlets] == [uri]
    assert task.output_asset() == Asset(uri=uri)


def test_an_object_storage_path_is_accepted_and_declared() -> None:
    task = storage_operator(ObjectStoragePath("file:///data/logs"))

    assert [outlet.uri for outlet in task.outlets] == ["file:///data/logs"]


def test_declared_outlets_are_kept_and_not_doubled() -> None:
    other = Asset(uri="s3://elsewhere/x")
    same = Asset(uri="s3://my-bucket/logs")

    task = storage_operator("s3://conn@my-bucket/logs", outlets=[other, same])

    assert [outlet.uri for outlet in task.outlets] == ["s3://elsewhere/x", "s3://my-bucket/logs"]


def test_an_output_path_from_xcom_is_checked_when_the_task_runs() -> None:
    # The template field takes an XComArg like any other: resolved (and checked) at run time.
    try:
        from airflow.sdk import DAG, task
    except ImportError:  # Airflow 2.11
        from airflow import DAG
        from airflow.decorators import task

    @task
    def where() -> str:
        return "file:///tmp/centralmon"

    with DAG(dag_id="xcom_output_path", schedule=None):
        export = CentralMonitoringLogsToStorageOperator(
            task_id="export", application="atr", output_path=where()
        )

    assert export.output_asset() is None
    assert list(export.upstream_task_ids) == ["where"]


def test_a_templated_output_path_declares_no_asset() -> None:
    task = storage_operator("s3://conn@bucket/{{ ds }}")

    assert task.output_asset() is None
    assert list(task.outlets) == []


# -- exporting -------------------------------------------------------------------------------


def test_exports_the_data_interval_as_gzipped_json_lines_with_a_manifest(
    sim: SimulatorHandle, tmp_path: Path
) -> None:
    start, end = window(sim)
    task = storage_operator(tmp_path, max_part_records=200, page_size=150)
    context = make_context(interval_start=start, interval_end=end)

    result = task.execute(context)

    directory = export_dir(result)
    query_hash = result["run"]["export"]["query_hash"]
    assert (
        directory
        == tmp_path / "atr" / (f"{start:%Y%m%dT%H%M%SZ}_{end:%Y%m%dT%H%M%SZ}") / query_hash
    )
    assert read_records(directory, result) == sources(sim, start, end)
    assert len(result["parts"]) > 2
    assert all(part["records"] <= 200 for part in result["parts"])
    for part in result["parts"]:
        data = (directory / part["name"]).read_bytes()
        assert part["name"].endswith(".jsonl.gz")
        assert hashlib.sha256(data).hexdigest() == part["sha256"]
        assert len(gzip.decompress(data)) == part["uncompressed_bytes"]
    manifest = json.loads((directory / "_manifest.json").read_bytes())
    assert manifest == {key: value for key, value in result.items() if key not in ("path", "run")}
    assert manifest["window"] == {
        "start": start.isoformat().replace("+00:00", "Z"),
        "end": end.isoformat().replace("+00:00", "Z"),
    }
    assert manifest["query"] == {
        "application": "atr",
        "timestamp_field": "@timestamp",
        "untimed_records": "keep",
        "keep_hit_metadata": False,
    }
    run = json.loads((directory / "_run.json").read_bytes())
    assert run == result["run"]
    assert run["search"]["pages"] == sim.counters()["routes"][SCROLL]["calls"]
    assert run["search"]["daily_remaining"] == 99
    assert (run["dag_id"], run["task_id"], run["run_id"]) == (
        "centralmon_export",
        "export",
        "scheduled__test",
    )
    event = context["outlet_events"][task.output_asset()]
    assert event.extra == {
        "path": result["path"],
        "manifest": f"{result['path']}/_manifest.json",
        "records": result["counts"]["records"],
        "window": manifest["window"],
    }


def test_the_xcom_value_stays_small_and_holds_no_secret(
    sim: SimulatorHandle,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    logs: Callable[[], str],
) -> None:
    secrets = record_secrets(sim, monkeypatch)
    start, end = window(sim, minutes=180)

    result = storage_operator(tmp_path, start=start, end=end, page_size=200).execute(make_context())

    encoded = json.dumps(result)
    assert result["counts"]["records"] > 1500
    assert len(encoded) < 4000
    text = logs() + encoded + "".join(path.read_text() for path in tmp_path.rglob("_*.json"))
    assert len(secrets) > 5
    for secret in secrets:
        assert secret not in text


def test_same_window_gives_byte_identical_parts_and_manifest_and_replaces_the_output(
    sim: SimulatorHandle, tmp_path: Path
) -> None:
    start, end = window(sim)
    first = storage_operator(tmp_path, start=start, end=end, max_part_records=100).execute(
        make_context()
    )
    first_files = read_tree(tmp_path)

    sim.clock.advance(300)
    second = storage_operator(tmp_path, start=start, end=end, max_part_records=100).execute(
        make_context()
    )
    second_files = read_tree(tmp_path)
    fewer_parts = storage_operator(tmp_path, start=start, end=end, max_part_records=1000).execute(
        make_context()
    )

    assert first["path"] == second["path"] == fewer_parts["path"]
    assert first_files.keys() == second_files.keys()
    for name, content in first_files.items():
        assert (second_files[name] == content) is (not name.endswith("_run.json")), name
    directory = export_dir(fewer_parts)
    assert sorted(path.name for path in directory.iterdir()) == sorted(
        [part["name"] for part in fewer_parts["parts"]] + ["_manifest.json", "_run.json"]
    )
    assert len(fewer_parts["parts"]) < len(first["parts"])
    assert read_records(directory, fewer_parts) == sources(sim, start, end)


def test_a_later_rerun_that_receives_more_records_outside_the_window_changes_only_run_json(
    centralmon_simulator_factory: Callable[..., SimulatorHandle],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # Records keep arriving after the window's end, as on the live service: about 70 in the
    # 35 s between the runs.
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    sim = centralmon_simulator_factory(
        applications=("atr",),
        clock=ManualClock(start=now),
        dataset_end=now + timedelta(hours=1),
        records_per_minute=120,
    )
    attach(sim, monkeypatch)
    end = now - timedelta(minutes=20)
    start = end - timedelta(hours=1)
    first = storage_operator(tmp_path, start=start, end=end).execute(make_context())
    first_files = read_tree(tmp_path)

    # 35 s: not a whole minute, so the relative lower bound reaches back by another amount.
    sim.clock.advance(35)
    second = storage_operator(tmp_path, start=start, end=end).execute(make_context())
    second_files = read_tree(tmp_path)

    assert first_files.keys() == second_files.keys()
    for name, content in first_files.items():
        assert (second_files[name] == content) is (not name.endswith("_run.json")), name
    assert first["run"]["search"]["time_range"] != second["run"]["search"]["time_range"]
    runs = [result["run"]["export"]["window_filter"] for result in (first, second)]
    assert 0 < runs[0]["after_window"] < runs[1]["after_window"]
    assert read_records(export_dir(second), second) == sources(sim, start, end)


def test_exact_layout_writes_to_the_rendered_path_uncompressed(
    sim: SimulatorHandle, tmp_path: Path
) -> None:
    start, end = window(sim, minutes=20)
    task = storage_operator(
        f"file://{tmp_path}/{{{{ params.team }}}}/{{{{ ts_nodash }}}}",
        layout="exact",
        compression="none",
    )
    context = make_context(
        interval_start=start, interval_end=end, params={"team": "sre"}, ts_nodash="20261201T1000"
    )
    task.render_template_fields(context)

    result = task.execute(context)

    directory = tmp_path / "sre" / "20261201T1000"
    assert export_dir(result) == directory
    assert dict(context["outlet_events"]) == {}
    assert [part["name"] for part in result["parts"]] == ["part-00000.jsonl"]
    assert read_records(directory, result) == sources(sim, start, end)


def test_a_raw_time_range_is_passed_through_and_named_after_the_request(
    sim: SimulatorHandle, tmp_path: Path
) -> None:
    result = storage_operator(tmp_path, time_range="now-15m").execute(make_context())

    directory = export_dir(result)
    assert directory.parent.name.startswith("requested-")
    assert directory.parent.name.endswith("_now-15m")
    assert result["window"]["time_range"] == "now-15m"
    assert result["run"]["search"]["time_range"] == "now-15m"
    expected = sources(sim, sim.now() - timedelta(minutes=15), sim.now() + timedelta(seconds=1))
    assert read_records(directory, result) == expected


def test_an_unrendered_output_path_fails_before_any_call(sim: SimulatorHandle) -> None:
    start, end = window(sim, minutes=10)
    task = storage_operator("file:///tmp/{{ params.missing }}", start=start, end=end)

    with pytest.raises(InvalidParameterError, match="output_path still holds a template"):
        task.execute(make_context())

    assert sim.counters()["routes"].get(SCROLL, {}).get("calls", 0) == 0


@pytest.mark.parametrize(
    ("rendered", "message"), [("rel-out", "needs a scheme"), ("/tmp/x#y", "fragment")]
)
def test_an_output_path_rendered_without_a_scheme_fails_before_any_call(
    sim: SimulatorHandle,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    rendered: str,
    message: str,
) -> None:
    # Were the path accepted, Airflow 3 would write under the working directory.
    monkeypatch.chdir(tmp_path)
    start, end = window(sim, minutes=10)
    task = storage_operator("{{ params.out }}", start=start, end=end)
    context = make_context(params={"out": rendered})
    task.render_template_fields(context)

    with pytest.raises(InvalidParameterError, match=message):
        task.execute(context)

    assert sim.counters()["routes"].get(SCROLL, {}).get("calls", 0) == 0
    assert list(tmp_path.iterdir()) == []


def test_a_scheme_without_a_filesystem_fails_before_any_call(sim: SimulatorHandle) -> None:
    start, end = window(sim, minutes=10)
    task = storage_operator("nosuchfs://bucket/logs", start=start, end=end)

    with pytest.raises(InvalidParameterError, match="no filesystem for the scheme 'nosuchfs'"):
        task.execute(make_context())

    assert sim.counters()["routes"].get(SCROLL, {}).get("calls", 0) == 0


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_a_spill_dir_that_is_no_directory_fails_before_any_call(
    sim: SimulatorHandle, tmp_path: Path, kind: str
) -> None:
    spill_dir = tmp_path / kind
    if kind == "file":
        spill_dir.write_text("not a directory")
    start, end = window(sim, minutes=10)
    task = storage_operator(tmp_path / "out", start=start, end=end, spill_dir=str(spill_dir))

    with pytest.raises(InvalidParameterError, match=f"spill_dir '{spill_dir}'"):
        task.execute(make_context())

    assert sim.counters()["routes"].get(SCROLL, {}).get("calls", 0) == 0


def test_a_given_spill_dir_is_checked_and_left_empty(sim: SimulatorHandle, tmp_path: Path) -> None:
    spill_dir = tmp_path / "spill"
    spill_dir.mkdir()
    start, end = window(sim, minutes=10)

    result = storage_operator(
        tmp_path / "out", start=start, end=end, spill_dir=str(spill_dir)
    ).execute(make_context())

    assert result["counts"]["records"] > 0
    assert list(spill_dir.iterdir()) == []


@pytest.mark.parametrize(("layout", "blocked"), [("exact", ""), ("partitioned", "atr")])
def test_a_file_where_the_export_directory_goes_fails_before_any_call(
    sim: SimulatorHandle, tmp_path: Path, layout: str, blocked: str
) -> None:
    output = tmp_path / "out"
    output.mkdir()
    in_the_way = output / blocked if blocked else output
    if blocked:
        in_the_way.write_text("precious")
    else:
        output.rmdir()
        output.write_text("precious")
    start, end = window(sim, minutes=10)
    task = storage_operator(output, start=start, end=end, layout=layout)

    with pytest.raises(InvalidParameterError, match="exists and is not a directory"):
        task.execute(make_context())

    assert in_the_way.read_text() == "precious"
    assert sim.counters()["routes"].get(SCROLL, {}).get("calls", 0) == 0


def test_progress_is_logged_at_a_steady_pace(
    sim: SimulatorHandle, tmp_path: Path, logs: Callable[[], str]
) -> None:
    start, end = window(sim, minutes=60)
    seen: list[ProgressSnapshot] = []
    task = storage_operator(tmp_path, start=start, end=end, page_size=100, progress_interval=1e-6)
    log_progress = task.log_export_progress

    def record_progress(snapshot: ProgressSnapshot) -> None:
        seen.append(snapshot)
        log_progress(snapshot)

    task.log_export_progress = record_progress  # type: ignore[method-assign]
    task.execute(make_context())

    phases = [snapshot.phase for snapshot in seen]
    assert phases[0] is ExportPhase.COLLECTING
    assert phases[-1] is ExportPhase.PUBLISHED
    assert {ExportPhase.WRITING, ExportPhase.PUBLISHING} <= set(phases)
    assert max(snapshot.pages for snapshot in seen) > 5
    text = logs()
    assert "records/s" in text
    assert "Export collecting:" in text


def test_an_object_store_gets_the_same_export_and_no_staging_leftovers(
    sim: SimulatorHandle,
) -> None:
    # fsspec's memory filesystem moves by copy and delete, as object stores do. Airflow has no
    # memory:// filesystem of its own: it is attached the way a user attaches any store.
    attach_store("memory", fs=MemoryFileSystem())
    root = ObjectStoragePath(f"memory://centralmon-{uuid.uuid4().hex}/exports")
    start, end = window(sim)

    first = storage_operator(root, start=start, end=end, max_part_records=150).execute(
        make_context()
    )
    directory = ObjectStoragePath(first["path"])
    first_files = {path.name: path.read_bytes() for path in directory.iterdir()}
    second = storage_operator(root, start=start, end=end, max_part_records=150).execute(
        make_context()
    )
    second_files = {path.name: path.read_bytes() for path in directory.iterdir()}

    assert first["path"] == second["path"]
    assert first["path"].startswith("memory://")
    lines = b"".join(gzip.decompress(first_files[part["name"]]) for part in first["parts"])
    assert [json.loads(line) for line in lines.splitlines()] == sources(sim, start, end)
    assert sorted(first_files) == sorted(
        [part["name"] for part in first["parts"]] + ["_manifest.json", "_run.json"]
    )
    assert len(first["parts"]) > 2
    for name, content in first_files.items():
        assert (second_files[name] == content) is (name != "_run.json"), name


# -- failures ----------------------------------------------------------------------------------


def test_a_connection_dropped_mid_scroll_publishes_nothing_and_a_rerun_succeeds(
    sim: SimulatorHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    start, end = window(sim, minutes=90)
    previous = storage_operator(tmp_path, start=start, end=end).execute(make_context())
    before = read_tree(tmp_path)
    add_page = ExportWriter.add_page

    def drop_after_page_three(writer: ExportWriter) -> None:
        add_page(writer)
        if writer.progress.pages == 3:
            # The next page's reply is cut off; the retry finds its cursor already moved on.
            sim.set_faults({"kind": "drop", "route": SCROLL, "count": 1})

    monkeypatch.setattr(ExportWriter, "add_page", drop_after_page_three)
    task = storage_operator(tmp_path, start=start, end=end, page_size=100)
    # Limitation of the service: a cursor cannot be read twice, so the retry fails too.
    with pytest.raises(CentralMonitoringError):
        task.execute(make_context())

    assert read_tree(tmp_path) == before
    assert sim.counters()["faults_injected"] == 1

    monkeypatch.setattr(ExportWriter, "add_page", add_page)
    rerun = storage_operator(tmp_path, start=start, end=end, page_size=100).execute(make_context())
    assert rerun["parts"] == previous["parts"]


def test_an_error_while_writing_parts_leaves_no_manifest_and_a_rerun_succeeds(
    sim: SimulatorHandle, tmp_path: Path
) -> None:
    start, end = window(sim, minutes=60)
    task = storage_operator(tmp_path, start=start, end=end, max_part_records=50)

    def fail_in_the_middle(snapshot: ProgressSnapshot) -> None:
        if snapshot.phase is ExportPhase.WRITING and snapshot.parts_written >= 3:
            raise RuntimeError("worker lost")

    task.progress_interval = 1e-6
    task.log_export_progress = fail_in_the_middle  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="worker lost"):
        task.execute(make_context())

    assert not list(tmp_path.rglob("_manifest.json"))
    assert not list(tmp_path.rglob("part-*"))

    result = storage_operator(tmp_path, start=start, end=end, max_part_records=50).execute(
        make_context()
    )
    assert read_records(export_dir(result), result) == sources(sim, start, end)


# -- lineage -------------------------------------------------------------------------------------


@pytest.mark.skipif(
    importlib.util.find_spec("airflow.providers.openlineage") is None,
    reason="the OpenLineage provider is not installed",
)
def test_openlineage_output_is_the_written_directory(sim: SimulatorHandle, tmp_path: Path) -> None:
    start, end = window(sim, minutes=10)
    task = storage_operator(tmp_path, start=start, end=end)
    result = task.execute(make_context())

    lineage = task.get_openlineage_facets_on_complete(None)

    (output,) = lineage.outputs
    assert (output.namespace, output.name) == ("file", export_dir(result).as_posix())
