from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest
import requests

from ._support import Api, ids


@pytest.mark.slow
def test_default_files_hold_100000_records(centralmon_simulator_factory):
    sim = centralmon_simulator_factory(
        total_records=104_000, span=timedelta(hours=6), applications=("atr",)
    )
    api = Api(sim)
    body = {"application": "atr", "time_range": "now-6h"}
    token = api.post("/v1/logs/batch", body).json()["token"]

    entries = api.post("/v1/logs/batch/urls", {"token": token}).json()["presigned_urls"]

    files = [
        msgspec.json.decode(requests.get(entry["presigned_url"], timeout=60).content)
        for entry in entries
    ]
    expected = sim.expected_ids(body)
    assert len(expected) > 100_000
    assert [len(f) for f in files] == [100_000, len(expected) - 100_000]
    assert ids(files[0] + files[1]) == expected
