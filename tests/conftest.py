from __future__ import annotations

import warnings

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # Airflow warns about its own configuration and internals on import; those warnings are
    # not about this provider and would otherwise turn into errors under "filterwarnings=error".
    from airflow import exceptions

    for name in ("RemovedInAirflow3Warning", "RemovedInAirflow4Warning"):
        category = getattr(exceptions, name, None)
        if category is not None:
            warnings.filterwarnings("ignore", category=category, module=r"airflow\.")
            config.addinivalue_line("filterwarnings", f"ignore::airflow.exceptions.{name}:airflow")
