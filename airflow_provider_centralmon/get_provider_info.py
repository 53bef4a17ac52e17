"""Provider metadata that Airflow discovers through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from airflow_provider_centralmon import __version__
from airflow_provider_centralmon._connection_form import CONN_FIELDS, UI_FIELD_BEHAVIOUR

PACKAGE = "airflow_provider_centralmon"
INTEGRATION = "Central Monitoring"


def _modules(*names: str) -> list[dict[str, Any]]:
    return [{"integration-name": INTEGRATION, "python-modules": [f"{PACKAGE}.{n}" for n in names]}]


def get_provider_info() -> dict[str, Any]:
    """Describe this provider to Airflow's providers manager."""
    return {
        "package-name": "airflow-provider-centralmon",
        "name": INTEGRATION,
        "description": "Export and watch logs of the Central Monitoring (myWizard AIOps) API.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": INTEGRATION,
                "external-doc-url": "https://central-monitoring-docs.mywizard-aiops.com",
                "tags": ["service"],
            }
        ],
        "hooks": _modules("hooks.centralmon", "hooks.centralmon_async"),
        "operators": _modules("operators.logs", "operators.query", "operators.batch"),
        "sensors": _modules("sensors.batch", "sensors.logs"),
        "triggers": _modules("triggers.batch", "triggers.logs"),
        "connection-types": [
            {
                "connection-type": "centralmon",
                "hook-class-name": f"{PACKAGE}.hooks.centralmon.CentralMonitoringHook",
                "hook-name": INTEGRATION,
                "conn-fields": CONN_FIELDS,
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
            }
        ],
    }
