"""Airflow names this provider uses, imported from wherever the running Airflow keeps them.

Airflow 3 moved its authoring interface to ``airflow.sdk``; Airflow 2.11 still has the old
paths. ``apache-airflow-providers-common-compat`` resolves each name lazily to the newest
location that exists, so nothing here triggers a deprecation warning on either major version.
Type checking always sees the Airflow 3 names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.providers.common.compat.version_compat import (
    AIRFLOW_V_3_0_PLUS,
    AIRFLOW_V_3_3_PLUS,
)

if TYPE_CHECKING:
    from airflow.sdk import (
        Asset,
        BaseHook,
        BaseOperator,
        BaseSensorOperator,
        Connection,
        Context,
        ObjectStoragePath,
        PokeReturnValue,
        ResumableJobMixin,
    )
    from airflow.sdk._shared.secrets_masker import redact
    from airflow.sdk.configuration import conf
    from airflow.sdk.exceptions import (
        AirflowException,
        AirflowFailException,
        AirflowSensorTimeout,
        TaskDeferred,
    )
    from airflow.sdk.log import mask_secret
    from airflow.triggers.base import BaseTrigger, TriggerEvent
else:
    from airflow.providers.common.compat.sdk import (
        AirflowException,
        AirflowFailException,
        AirflowSensorTimeout,
        Asset,
        BaseHook,
        BaseOperator,
        BaseSensorOperator,
        Connection,
        Context,
        ObjectStoragePath,
        PokeReturnValue,
        ResumableJobMixin,
        TaskDeferred,
        conf,
        mask_secret,
        redact,
    )

_TRIGGER_NAMES = frozenset({"BaseTrigger", "TriggerEvent"})


def __getattr__(name: str) -> object:
    # Triggers live in airflow.triggers.base on Airflow 2.11 and 3.x alike. That module pulls
    # in Airflow's models on 2.11, so it is imported only by the modules that need it.
    if name in _TRIGGER_NAMES:
        from airflow.triggers import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AIRFLOW_V_3_0_PLUS",
    "AIRFLOW_V_3_3_PLUS",
    "AirflowException",
    "AirflowFailException",
    "AirflowSensorTimeout",
    "Asset",
    "BaseHook",
    "BaseOperator",
    "BaseSensorOperator",
    "BaseTrigger",
    "Connection",
    "Context",
    "ObjectStoragePath",
    "PokeReturnValue",
    "ResumableJobMixin",
    "TaskDeferred",
    "TriggerEvent",
    "conf",
    "mask_secret",
    "redact",
]
