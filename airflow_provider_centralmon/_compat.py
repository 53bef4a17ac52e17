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
    from airflow.sdk.exceptions import AirflowException
    from airflow.sdk.log import mask_secret
else:
    from airflow.providers.common.compat.sdk import (
        AirflowException,
        Asset,
        BaseHook,
        BaseOperator,
        BaseSensorOperator,
        Connection,
        Context,
        ObjectStoragePath,
        PokeReturnValue,
        ResumableJobMixin,
        mask_secret,
        redact,
    )

__all__ = [
    "AIRFLOW_V_3_0_PLUS",
    "AIRFLOW_V_3_3_PLUS",
    "AirflowException",
    "Asset",
    "BaseHook",
    "BaseOperator",
    "BaseSensorOperator",
    "Connection",
    "Context",
    "ObjectStoragePath",
    "PokeReturnValue",
    "ResumableJobMixin",
    "mask_secret",
    "redact",
]
