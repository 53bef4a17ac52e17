"""Batch exports: jobs, their readiness, their files and the presigned URLs to fetch them.

Presigned URLs point back at the simulator, at an S3-like path, and carry an expiry
(``Expires``, epoch seconds, and ``X-Amz-Expires``, seconds of validity) and an HMAC
signature over path, expiry and a nonce, so every request for URLs yields fresh ones.
Limitation: batch tokens and files live until the simulator is reset; how long the real
service keeps them is unknown.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from airflow_provider_centralmon.simulator.dataset import LogRecord, format_timestamp
from airflow_provider_centralmon.simulator.settings import PRESIGNED_PREFIX, SimulatorSettings


@dataclass
class BatchJob:
    """One submitted export: the hits it found, cut into files."""

    job_id: str
    client_id: str
    submitted_at: datetime
    window_ms: tuple[int, int]
    files: list[list[LogRecord]]
    polls: int = 0
    echo: dict[str, Any] = field(default_factory=dict)


class BatchStore:
    """Submitted jobs by batch token, and the signing of their file URLs; thread-safe.

    :param settings: simulator settings (delays, file size, URL lifetime)
    """

    def __init__(self, *, settings: SimulatorSettings) -> None:
        self._settings = settings
        self._key = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._by_token: dict[str, BatchJob] = {}
        self._by_id: dict[str, BatchJob] = {}

    def submit(self, job: BatchJob) -> str:
        """Store ``job`` and return its opaque batch token."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._by_token[token] = job
            self._by_id[job.job_id] = job
        return token

    def find(self, token: str) -> BatchJob | None:
        """Return the job of a batch token, or ``None``."""
        with self._lock:
            return self._by_token.get(token)

    def clear(self) -> None:
        """Forget every job."""
        with self._lock:
            self._by_token.clear()
            self._by_id.clear()

    def describe(self, job: BatchJob, base_url: str, now: datetime) -> list[dict[str, Any]]:
        """Count one poll of ``job`` and return its ``presigned_urls`` entries at ``now``."""
        settings = self._settings
        with self._lock:
            job.polls += 1
            polls = job.polls
        delay = timedelta(seconds=settings.batch_ready_delay_s)
        finished = now >= job.submitted_at + delay and polls > settings.batch_pending_polls
        if finished and settings.batch_fail:
            return [_entry(job, index, None, "failed") for index in range(len(job.files))]
        if not finished:
            if settings.batch_pending_shape == "no_entries":
                return []
            entries = [
                _entry(job, index, None, settings.batch_pending_status)
                for index in range(len(job.files))
            ]
            if settings.batch_pending_shape == "absent_url":
                for entry in entries:
                    del entry["presigned_url"]
            return entries
        return [
            _entry(job, index, self._sign_url(base_url, job.job_id, index, now), "completed")
            for index in range(len(job.files))
        ]

    def file_for(self, path: str, query: dict[str, str], now: datetime) -> list[LogRecord]:
        """Return the records a presigned URL serves; raise :class:`PresignError` if refused."""
        try:
            expires = int(query["Expires"])
            signature = query["X-Amz-Signature"]
            nonce = query["X-Amz-Nonce"]
        except (KeyError, ValueError):
            raise PresignError(
                403,
                "AccessDenied",
                "Query-string authentication requires the "
                "Signature, Expires and AccessKeyId parameters",
            ) from None
        expected = self._signature(path, expires, nonce)
        if not hmac.compare_digest(expected, signature):
            raise PresignError(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        if now.timestamp() >= expires:
            raise PresignError(403, "AccessDenied", "Request has expired")

        job_id, _, name = path.removeprefix(PRESIGNED_PREFIX + "/").partition("/")
        with self._lock:
            job = self._by_id.get(job_id)
        index = int(name.removeprefix("part-").removesuffix(".json"))
        if job is None or index >= len(job.files):
            raise PresignError(404, "NoSuchKey", "The specified key does not exist.")
        return job.files[index]

    def _sign_url(self, base_url: str, job_id: str, index: int, now: datetime) -> str:
        path = f"{PRESIGNED_PREFIX}/{job_id}/part-{index:05d}.json"
        lifetime_s = self._settings.presigned_url_lifetime_s
        expires = int(now.timestamp()) + lifetime_s
        nonce = secrets.token_hex(8)
        query = {
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Date": now.strftime("%Y%m%dT%H%M%SZ"),
            "X-Amz-Expires": str(lifetime_s),
            "Expires": str(expires),
            "X-Amz-Nonce": nonce,
            "X-Amz-Signature": self._signature(path, expires, nonce),
        }
        return f"{base_url}{path}?{urlencode(query)}"

    def _signature(self, path: str, expires: int, nonce: str) -> str:
        message = f"{path}\n{expires}\n{nonce}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()


class PresignError(Exception):
    """A presigned URL request S3 would refuse, with its S3 error code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.message = message


def split_into_files(hits: list[LogRecord], per_file: int) -> list[list[LogRecord]]:
    """Cut hits into files of at most ``per_file``; no hits still make one empty file.

    Limitation: whether the real service lists a file for an empty export is unknown.
    """
    if not hits:
        return [[]]
    return [hits[start : start + per_file] for start in range(0, len(hits), per_file)]


def _entry(job: BatchJob, index: int, url: str | None, status: str) -> dict[str, Any]:
    return {
        "presigned_url": url,
        "time_range": _file_time_range(job, index),
        "ready": status == "completed",
        "status": status,
    }


def _file_time_range(job: BatchJob, index: int) -> str:
    # Limitation: the format of an entry's time_range is not documented; the simulator sends
    # "<first>/<last>" with the @timestamp of the file's first and last record.
    records = job.files[index]
    if records:
        return f"{format_timestamp(records[0].ts_ms)}/{format_timestamp(records[-1].ts_ms)}"
    start_ms, end_ms = job.window_ms
    return f"{format_timestamp(start_ms)}/{format_timestamp(end_ms - 1)}"
