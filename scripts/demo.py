"""Run the hourly export example offline, against the bundled simulator: ``make demo``.

Steps: start the Central Monitoring simulator on a free loopback port, prepare a local
Airflow home in ``.demo/airflow`` (SQLite, migrated only once), run
``airflow dags test centralmon_hourly_export`` for the last full hour, then show where the
files are, the manifest and the first records. The simulator is stopped whatever happens;
the exit status is not zero when a step failed.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEMO_DIR = REPO / ".demo"
AIRFLOW_HOME = DEMO_DIR / "airflow"
EXPORTS = DEMO_DIR / "exports"
AIRFLOW_LOG = DEMO_DIR / "airflow-output.log"
MIGRATED_MARKER = AIRFLOW_HOME / ".migrated"

DAG_ID = "centralmon_hourly_export"
APPLICATION = "atr"
RECORDS_SHOWN = 3
SHOWN_FIELD_CHARS = 60
LOG_TAIL_LINES = 40
# Airflow's CLI exits quickly; a run that takes longer than this is stuck.
DAG_RUN_TIMEOUT_S = 600


class DemoError(Exception):
    """A step of the demo failed; the message says which and where to look."""


def main() -> int:
    """Run the demo; return the exit status."""
    started = time.monotonic()
    try:
        from airflow_provider_centralmon.simulator.handle import SimulatorHandle
        from airflow_provider_centralmon.simulator.settings import SimulatorSettings
    except ImportError as error:
        print(f"demo: run it with the project's virtualenv (make demo): {error}", file=sys.stderr)
        return 1

    # The simulator's records end now and reach back one day, so the last full hour is in.
    # Both come from the same instant: an hour starting between two clock readings would
    # otherwise leave the exported hour without its last minutes.
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    window_end = now.replace(minute=0)
    window_start = window_end - timedelta(hours=1)
    try:
        with SimulatorHandle(settings=SimulatorSettings(dataset_end=now)) as simulator:
            print(f"Simulator of the Central Monitoring API listening on {simulator.base_url}")
            env = airflow_environment(simulator.connection_json())
            migrate_once(env)
            run_started = time.time()
            run_hourly_export(env, window_end)
            manifest_path = find_manifest(window_start, window_end, written_after=run_started)
            expected = len(simulator.records_between(window_start, window_end, APPLICATION))
            show_export(manifest_path, expected)
    except DemoError as error:
        print(f"\ndemo failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ndemo interrupted", file=sys.stderr)
        return 130

    print(f"\nDemo finished in {time.monotonic() - started:.0f} s; the simulator is stopped.")
    print_next_steps()
    return 0


def airflow_environment(connection_json: str) -> dict[str, str]:
    """Return the environment of the Airflow commands: a local home, the example DAGs."""
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_HOME": str(AIRFLOW_HOME),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW_CONN_CENTRALMON_DEFAULT": connection_json,
            "AIRFLOW_VAR_CENTRALMON_EXPORT_PATH": EXPORTS.as_uri(),
        }
    )
    return env


def migrate_once(env: Mapping[str, str]) -> None:
    """Create the SQLite metadata database unless this Airflow version already did."""
    version = airflow_version()
    if MIGRATED_MARKER.is_file() and MIGRATED_MARKER.read_text().strip() == version:
        print(f"Airflow {version} home ready: {relative(AIRFLOW_HOME)}")
        return

    print(f"Creating the Airflow {version} home in {relative(AIRFLOW_HOME)} (once) ...")
    AIRFLOW_HOME.mkdir(parents=True, exist_ok=True)
    with step_log("airflow db migrate") as log:
        result = subprocess.run(
            [airflow_command(), "db", "migrate"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if result.returncode != 0:
        raise DemoError(f"airflow db migrate exited with {result.returncode}\n{log_tail()}")
    MIGRATED_MARKER.write_text(version + "\n")


def run_hourly_export(env: Mapping[str, str], logical_date: datetime) -> None:
    """Run the example DAG once, for the hour that ends at ``logical_date``."""
    start = logical_date - timedelta(hours=1)
    print(
        f"Running 'airflow dags test {DAG_ID} {logical_date.isoformat()}': exports the "
        f"{APPLICATION} logs of {start:%H:%M} to {logical_date:%H:%M} UTC "
        f"(Airflow output: {relative(AIRFLOW_LOG)}) ..."
    )
    with step_log(f"airflow dags test {DAG_ID}") as log:
        try:
            result = subprocess.run(
                [airflow_command(), "dags", "test", DAG_ID, logical_date.isoformat()],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=DAG_RUN_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise DemoError(f"the DAG run took over {DAG_RUN_TIMEOUT_S} s\n{log_tail()}") from None
    if result.returncode != 0:
        raise DemoError(f"the DAG run exited with {result.returncode}\n{log_tail()}")


def find_manifest(start: datetime, end: datetime, *, written_after: float) -> Path:
    """Return the manifest of ``[start, end)`` written after the epoch time ``written_after``."""
    window = f"{start:%Y%m%dT%H%M%SZ}_{end:%Y%m%dT%H%M%SZ}"
    found = sorted((EXPORTS / APPLICATION / window).glob("*/_manifest.json"))
    # A manifest left by an earlier demo proves nothing about this run: only a fresh one does.
    fresh = [path for path in found if path.stat().st_mtime >= written_after]
    if not fresh:
        raise DemoError(
            f"the run wrote no manifest under {relative(EXPORTS / APPLICATION / window)}\n"
            f"{log_tail()}"
        )
    return fresh[-1]


def show_export(manifest_path: Path, expected_records: int) -> None:
    """Print where the export is, its manifest, and its first records."""
    manifest = json.loads(manifest_path.read_text())
    directory = manifest_path.parent
    records = manifest["counts"]["records"]

    print(f"\nExported files, in {relative(directory)}:")
    for path in sorted(directory.iterdir()):
        print(f"  {path.name:<22} {path.stat().st_size:>10,} bytes")

    print(f"\n{manifest_path.name}:")
    print(indent(manifest_path.read_text(encoding="utf-8")))

    verdict = "matches" if records == expected_records else "DOES NOT MATCH"
    print(
        f"\n{records} records exported; the simulator holds {expected_records} {APPLICATION} "
        f"records in that hour: {verdict}."
    )
    if records != expected_records:
        raise DemoError("the export does not hold every record of the hour")

    if manifest["parts"]:
        first_part = directory / manifest["parts"][0]["name"]
        print(f"\nFirst {RECORDS_SHOWN} records of {first_part.name} (long values cut):")
        for record in first_records(first_part, RECORDS_SHOWN):
            print(indent(json.dumps(shorten(record), ensure_ascii=False)))


def first_records(part: Path, count: int) -> Iterator[dict[str, Any]]:
    """Yield the first ``count`` records of a part, gzipped or not."""
    opener = gzip.open if part.name.endswith(".gz") else open
    with opener(part, "rt", encoding="utf-8") as lines:
        for number, line in enumerate(lines):
            if number >= count:
                return
            yield json.loads(line)


def shorten(record: Mapping[str, Any]) -> dict[str, Any]:
    """Return the record with long texts cut and nested objects summed up, to fit a few lines."""
    shown: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, str) and len(value) > SHOWN_FIELD_CHARS:
            value = value[:SHOWN_FIELD_CHARS] + "..."
        elif isinstance(value, Mapping):
            value = f"{{{len(value)} fields}}"
        shown[key] = value
    return shown


def print_next_steps() -> None:
    """Say how to look further, run again, and use a real service."""
    listing = f"ls -R {relative(EXPORTS)}"
    print(
        "\nNext:\n"
        f"  {'make demo':<24}run again: the same hour is replaced; a newer one is added\n"
        f"  {'':<24}once it has ended\n"
        f"  {listing:<24}every export so far (the Airflow home is {relative(AIRFLOW_HOME)})\n"
        "  Against the real service, set AIRFLOW_CONN_CENTRALMON_DEFAULT to your client id and\n"
        "  secret, and the Airflow Variable centralmon_export_path to where the files go\n"
        "  (e.g. s3://aws_default@my-bucket/centralmon): see the README."
    )


@contextmanager
def step_log(title: str) -> Iterator[Any]:
    """Open the log the Airflow output of a step goes to, headed by ``title``."""
    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    with AIRFLOW_LOG.open("w", encoding="utf-8") as log:
        log.write(f"$ {title}\n")
        log.flush()
        yield log


def log_tail() -> str:
    """Return the last lines of the Airflow output, to explain a failure."""
    try:
        lines = AIRFLOW_LOG.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    tail = "\n".join(f"  | {line}" for line in lines[-LOG_TAIL_LINES:])
    return f"Last lines of {relative(AIRFLOW_LOG)}:\n{tail}"


def airflow_version() -> str:
    """Return the version of the Airflow installed next to this interpreter."""
    from importlib.metadata import version

    return version("apache-airflow")


def airflow_command() -> str:
    """Return the ``airflow`` executable of this interpreter's virtualenv."""
    return str(Path(sys.executable).parent / "airflow")


def relative(path: Path) -> str:
    """Return ``path`` relative to the working directory when it is below it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def indent(text: str) -> str:
    """Indent every line of ``text`` by two spaces."""
    return "\n".join("  " + line for line in text.splitlines())


if __name__ == "__main__":
    sys.exit(main())
