"""Hook for the Central Monitoring logs API."""

from __future__ import annotations

from typing import Any

from airflow_provider_centralmon._compat import BaseHook
from airflow_provider_centralmon._connection_form import (
    legacy_field_behaviour,
    legacy_form_widgets,
)


class CentralMonitoringHook(BaseHook):
    """Talk to the Central Monitoring API with the credentials of an Airflow connection.

    :param centralmon_conn_id: id of a ``centralmon`` connection
    """

    conn_name_attr = "centralmon_conn_id"
    default_conn_name = "centralmon_default"
    conn_type = "centralmon"
    hook_name = "Central Monitoring"

    def __init__(self, centralmon_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.centralmon_conn_id = centralmon_conn_id

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Return the extra fields of the connection form (Airflow before 3.2)."""
        return legacy_form_widgets()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Return how the standard connection fields are shown (Airflow before 3.2)."""
        return legacy_field_behaviour()
