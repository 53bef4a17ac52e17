from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from importlib.metadata import distribution, entry_points
from pathlib import Path
from typing import Any

import airflow
import jsonschema
import pytest

import airflow_provider_centralmon
from airflow_provider_centralmon.get_provider_info import get_provider_info


def _schema() -> dict[str, object]:
    path = Path(airflow.__file__).parent / "provider_info.schema.json"
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def _import(dotted: str) -> Any:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def test_provider_info_passes_airflows_schema() -> None:
    jsonschema.validate(get_provider_info(), _schema())


def test_entry_point_returns_the_provider_info() -> None:
    (entry_point,) = [
        ep
        for ep in entry_points(group="apache_airflow_provider")
        if ep.value.startswith("airflow_provider_centralmon.")
    ]

    info = entry_point.load()()

    assert info == get_provider_info()


def test_package_name_is_the_normalised_distribution_name() -> None:
    info = get_provider_info()

    dist = distribution(info["package-name"])

    assert dist.metadata["Name"].lower().replace("_", "-") == info["package-name"]
    assert info["versions"] == [dist.version] == [airflow_provider_centralmon.__version__]


@pytest.mark.parametrize("section", ["hooks", "operators", "sensors", "triggers"])
def test_every_listed_module_imports(section: str) -> None:
    for entry in get_provider_info().get(section, []):
        for module in entry["python-modules"]:
            importlib.import_module(module)


def test_connection_type_points_to_the_hook() -> None:
    (conn,) = get_provider_info()["connection-types"]

    hook_class = _import(conn["hook-class-name"])

    assert conn["connection-type"] == hook_class.conn_type == "centralmon"
    assert conn["hook-name"] == "Central Monitoring"
    assert hook_class.default_conn_name == "centralmon_default"


def test_legacy_form_matches_the_declared_form() -> None:
    (conn,) = get_provider_info()["connection-types"]
    hook_class = _import(conn["hook-class-name"])

    behaviour = hook_class.get_ui_field_behaviour()

    assert behaviour["hidden_fields"] == conn["ui-field-behaviour"]["hidden-fields"]
    assert behaviour["relabeling"] == conn["ui-field-behaviour"]["relabeling"]
    assert behaviour["placeholders"] == conn["ui-field-behaviour"]["placeholders"]


def test_legacy_form_widgets_cover_every_extra_field() -> None:
    pytest.importorskip("flask_appbuilder", reason="the legacy form needs Airflow 2's web UI")
    (conn,) = get_provider_info()["connection-types"]
    hook_class = _import(conn["hook-class-name"])

    widgets = hook_class.get_connection_form_widgets()

    assert set(widgets) == set(conn["conn-fields"])


def test_form_field_names_stay_clear_of_masked_words() -> None:
    (conn,) = get_provider_info()["connection-types"]
    masked_words = ("token", "secret", "password", "api_key", "apikey", "private")

    for name in conn["conn-fields"]:
        assert not any(word in name.lower() for word in masked_words), name


def airflow_cli_json(airflow_home: Path, *arguments: str) -> Any:
    """Run ``airflow <arguments> --output json`` in a fresh Airflow home; return its output."""
    listing = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), *arguments, "--output", "json"],
        env={**os.environ, "AIRFLOW_HOME": str(airflow_home)},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(listing.stdout)


def test_airflow_cli_lists_the_provider_with_its_version(tmp_path: Path) -> None:
    listing = airflow_cli_json(tmp_path, "providers", "list")

    providers = {p["package_name"]: p["version"] for p in listing}
    assert providers["airflow-provider-centralmon"] == airflow_provider_centralmon.__version__


def test_airflow_cli_lists_the_hook_of_the_connection_type(tmp_path: Path) -> None:
    listing = airflow_cli_json(tmp_path, "providers", "hooks")

    hooks = {hook["connection_type"]: hook for hook in listing}
    assert hooks["centralmon"] == {
        "connection_type": "centralmon",
        "class": "airflow_provider_centralmon.hooks.centralmon.CentralMonitoringHook",
        "conn_id_attribute_name": "centralmon_conn_id",
        "package_name": "airflow-provider-centralmon",
        "hook_name": "Central Monitoring",
    }
