from __future__ import annotations

import pytest

from airflow_provider_centralmon.simulator.handle import SimulatorHandle

from ._support import Api


@pytest.fixture
def api(centralmon_simulator: SimulatorHandle) -> Api:
    return Api(centralmon_simulator)
