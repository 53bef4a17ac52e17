"""BatchDownload: bounded parallel downloads feeding one consumer, against the simulator."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from airflow_provider_centralmon._batch_download import BatchDownload, Delivery
from airflow_provider_centralmon.exceptions import BatchError, ServiceError
from airflow_provider_centralmon.hooks._types import BatchStatus
from airflow_provider_centralmon.hooks.centralmon import CentralMonitoringHook
from airflow_provider_centralmon.simulator.clock import ManualClock
from airflow_provider_centralmon.simulator.handle import SimulatorHandle
from airflow_provider_centralmon.simulator.settings import SimulatorSettings

from .support import FILES, attach, calls

FILE_RECORDS = 100


@pytest.fixture(scope="module")
def module_sim() -> Iterator[SimulatorHandle]:
    clock = ManualClock(start=datetime.now(UTC).replace(second=0, microsecond=0))
    settings = SimulatorSettings(
        applications=("atr",), span=timedelta(hours=2), batch_records_per_file=FILE_RECORDS
    )
    handle = SimulatorHandle(settings=settings, clock=clock)
    yield handle
    handle.stop()


@pytest.fixture
def sim(module_sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch) -> SimulatorHandle:
    module_sim.reset()
    return attach(module_sim, monkeypatch)


@pytest.fixture
def hook(sim: SimulatorHandle) -> Iterator[CentralMonitoringHook]:
    with CentralMonitoringHook() as made:
        yield made


@pytest.fixture
def batch(hook: CentralMonitoringHook) -> tuple[str, BatchStatus]:
    """A ready export of the last hour (about 600 records, 6 or 7 files)."""
    token = hook.submit_batch({"application": "atr", "time_range": "now-60m"}).batch_token
    return token, hook.get_batch_files(token)


def download(
    hook: CentralMonitoringHook, batch: tuple[str, BatchStatus], **options: Any
) -> BatchDownload:
    token, status = batch
    return BatchDownload(
        files=status.files,
        new_hook=CentralMonitoringHook,
        list_files=lambda: hook.get_batch_files(token),
        **options,
    )


def expected_ids(sim: SimulatorHandle, token: str) -> dict[int, list[str]]:
    job = sim.state.batches.find(token)
    assert job is not None
    return {index: [record.record_id for record in file] for index, file in enumerate(job.files)}


def ids_by_file(deliveries: Iterator[Delivery]) -> tuple[dict[int, list[str]], list[Delivery]]:
    received: dict[int, list[str]] = {}
    finished = []
    for delivery in deliveries:
        received.setdefault(delivery.index, []).extend(hit["_id"] for hit in delivery.records)
        if delivery.finished is not None:
            finished.append(delivery)
    return received, finished


def test_every_file_arrives_whole_and_in_its_order(
    sim: SimulatorHandle, hook: CentralMonitoringHook, batch: tuple[str, BatchStatus]
) -> None:
    received, finished = ids_by_file(download(hook, batch, chunk_records=7).deliveries())

    assert received == expected_ids(sim, batch[0])
    assert len(received) >= 6
    assert sorted(d.index for d in finished) == sorted(received)
    assert all(d.finished is not None and d.finished.attempts == 1 for d in finished)


def test_at_most_max_concurrency_files_download_at_once(
    sim: SimulatorHandle,
    hook: CentralMonitoringHook,
    batch: tuple[str, BatchStatus],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sim.set_faults("/_s3/*=latency,latency_s=0.05")
    active, most = Counter[str](), Counter[str]()
    guard = threading.Lock()
    original = CentralMonitoringHook.iter_batch_file

    def counted(self: CentralMonitoringHook, url: str) -> Iterator[dict[str, Any]]:
        with guard:
            active["now"] += 1
            most["max"] = max(most["max"], active["now"])
        try:
            yield from original(self, url)
        finally:
            with guard:
                active["now"] -= 1

    monkeypatch.setattr(CentralMonitoringHook, "iter_batch_file", counted)

    received, _ = ids_by_file(download(hook, batch, max_concurrency=3).deliveries())

    assert received == expected_ids(sim, batch[0])
    assert most["max"] == 3


def test_a_file_cut_off_midway_is_read_again_without_repeating_records(
    sim: SimulatorHandle, hook: CentralMonitoringHook, batch: tuple[str, BatchStatus]
) -> None:
    sim.set_faults("/_s3/*=drop,count=1")

    received, finished = ids_by_file(
        download(hook, batch, chunk_records=10, max_concurrency=1).deliveries()
    )

    assert received == expected_ids(sim, batch[0])
    attempts = sorted(d.finished.attempts for d in finished if d.finished is not None)
    assert attempts[-1] == 2
    assert attempts[:-1] == [1] * (len(finished) - 1)
    assert calls(sim, FILES) == len(finished) + 1


def test_a_file_failing_on_every_attempt_fails_the_download_in_the_consumer(
    sim: SimulatorHandle, hook: CentralMonitoringHook, batch: tuple[str, BatchStatus]
) -> None:
    sim.set_faults("/_s3/*=drop")

    with pytest.raises(ServiceError):
        list(download(hook, batch, file_attempts=2).deliveries())

    assert not [t for t in threading.enumerate() if t.name.startswith("centralmon-batch")]


def test_stopping_early_stops_every_download(
    sim: SimulatorHandle, hook: CentralMonitoringHook, batch: tuple[str, BatchStatus]
) -> None:
    deliveries = download(hook, batch, chunk_records=5, queue_chunks=1).deliveries()

    first = next(deliveries)
    deliveries.close()

    assert first.records
    assert not [t for t in threading.enumerate() if t.name.startswith("centralmon-batch")]
    assert calls(sim, FILES) < len(batch[1].files)


def test_fresh_urls_of_an_export_no_longer_ready_fail_the_download(
    sim: SimulatorHandle, hook: CentralMonitoringHook, batch: tuple[str, BatchStatus]
) -> None:
    _, status = batch
    sim.clock.advance(3601)
    pending = BatchStatus(files=(), meta=status.meta, ready=False, failed=False)

    with pytest.raises(BatchError, match="no longer downloadable"):
        list(
            BatchDownload(
                files=status.files, new_hook=CentralMonitoringHook, list_files=lambda: pending
            ).deliveries()
        )


@pytest.mark.parametrize(
    "option", ["max_concurrency", "chunk_records", "queue_chunks", "file_attempts"]
)
def test_counts_must_be_positive(option: str, batch: tuple[str, BatchStatus]) -> None:
    with pytest.raises(ValueError, match=option):
        BatchDownload(
            files=batch[1].files,
            new_hook=CentralMonitoringHook,
            list_files=lambda: batch[1],
            **{option: 0},
        )
