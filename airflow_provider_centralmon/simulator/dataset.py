"""Deterministic, lazily generated log records: the simulator's single source of truth.

Records are generated per application and per hour of the span, from a generator seeded with
(seed, application, hour), so any hour comes out the same whatever was asked before it.
Each record is kept as the bytes of its OpenSearch hit, encoded once, so serving a page is a
join of ready bytes. Limitation: generated hours stay cached for the life of the simulator;
a span of a few million records needs a few GiB of memory.
"""

from __future__ import annotations

import bisect
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

BUCKET_MS = 3_600_000
_ENCODER = msgspec.json.Encoder()

_SERVICES = ("checkout", "billing", "identity", "search", "ingest", "notifier", "scheduler")
_LEVELS = ("INFO", "INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR")
_STATUS_BY_LEVEL = {"INFO": "ok", "DEBUG": "ok", "WARN": "degraded", "ERROR": "error"}
_MESSAGES = (
    "GET /api/orders/%(n)d completed in %(ms)d ms",
    "POST /api/tickets accepted ticket %(n)d after %(ms)d ms",
    "Connection pool for db-%(k)d at %(pct)d%% capacity",
    "Retrying upstream call %(k)d/9 after %(ms)d ms",
    "Ticket %(n)d escalated to the Zürich support desk",
    "Benutzer %(n)d abgemeldet nach %(ms)d ms Inaktivität",
    "ユーザー %(n)d のセッションが期限切れになりました",
    "Disk usage at %(pct)d%% on /var/lib/data ⚠",
    "Cache miss ratio %(pct)d%% for key space k%(k)d",
    "Job %(n)d finished with %(k)d warnings — see trace",
)
_FRAMES = (
    '  File "/srv/app/{svc}/handlers.py", line {k}, in handle_request\n',
    '  File "/srv/app/{svc}/client.py", line {k}, in call_upstream\n',
    '  File "/usr/lib/python3/site-packages/urllib3/connectionpool.py", line {k}, in urlopen\n',
)
_HOSTS = tuple(f"ip-10-0-{subnet}-{host}" for subnet in range(4) for host in range(1, 33))
_EVENTOPS_GROUPS = ("/aws/lambda/ingest", "/aws/ecs/notifier", "/eventops/rules")
_TENANTS = ("tenant-a", "tenant-b")
_STAGES = ("dev", "test", "prod")

# _source fields that are kept as attributes, so filtering on them needs no decoding.
_FAST_FIELDS = (
    "domain",
    "app_type",
    "level",
    "status",
    "service",
    "host",
    "log_group",
    "tenant",
    "stage",
)


class LogRecord:
    """One generated record: its sort key, its common fields and its encoded hit."""

    __slots__ = (
        "app_type",
        "domain",
        "hit",
        "host",
        "level",
        "log_group",
        "record_id",
        "service",
        "source_offset",
        "stage",
        "status",
        "tenant",
        "ts_ms",
    )

    def __init__(self, ts_ms: int, record_id: str, source: dict[str, Any], index: str) -> None:
        self.ts_ms = ts_ms
        self.record_id = record_id
        self.domain = source["domain"]
        self.app_type = source["app_type"]
        self.level = source["level"]
        self.status = source["status"]
        self.service = source["service"]
        self.host = source["host"]
        self.log_group = source.get("log_group")
        self.tenant = source.get("tenant")
        self.stage = source.get("stage")
        prefix = b'{"_index":"%s","_id":"%s","_source":' % (index.encode(), record_id.encode())
        self.source_offset = len(prefix)
        self.hit = prefix + _ENCODER.encode(source) + b"}"

    def source_bytes(self) -> bytes:
        """Return the encoded ``_source`` object alone."""
        return self.hit[self.source_offset : -1]

    def field(self, name: str) -> Any:
        """Return the value of a ``_source`` field, or ``None`` when the record lacks it."""
        if name in _FAST_FIELDS:
            return getattr(self, name)
        return msgspec.json.decode(self.source_bytes()).get(name)

    def as_hit(self) -> dict[str, Any]:
        """Return the hit decoded into plain Python objects."""
        hit: dict[str, Any] = msgspec.json.decode(self.hit)
        return hit


@dataclass(frozen=True)
class RecordFilter:
    """Which records of an application a request wants.

    :param application: the application
    :param equals: ``_source`` field name to required value (exact match)
    """

    application: str
    equals: tuple[tuple[str, Any], ...] = ()

    def accepts(self, record: LogRecord) -> bool:
        """Return whether ``record`` matches every exact-value condition."""
        return all(record.field(name) == value for name, value in self.equals)


class Dataset:
    """Records of every application, generated on first use, one hour at a time.

    :param seed: generator seed
    :param applications: applications that have records
    :param domains: domains the records are spread over
    :param start_ms: epoch milliseconds of the first possible record (inclusive)
    :param end_ms: epoch milliseconds after the last possible record (exclusive)
    :param records_per_minute: average records per minute and per application
    """

    def __init__(
        self,
        *,
        seed: int,
        applications: tuple[str, ...],
        domains: tuple[str, ...],
        start_ms: int,
        end_ms: int,
        records_per_minute: float,
    ) -> None:
        self.seed = seed
        self.applications = applications
        self.domains = domains
        self.start_ms = start_ms
        self.end_ms = end_ms
        self._per_ms = records_per_minute / 60_000
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, int], tuple[list[int], list[LogRecord]]] = {}

    def select(self, record_filter: RecordFilter, start_ms: int, end_ms: int) -> list[LogRecord]:
        """Return matching records with ``start_ms <= @timestamp < end_ms``, sorted."""
        start_ms = max(start_ms, self.start_ms)
        end_ms = min(end_ms, self.end_ms)
        selected: list[LogRecord] = []
        if start_ms >= end_ms or record_filter.application not in self.applications:
            return selected

        for bucket in range(start_ms // BUCKET_MS, (end_ms - 1) // BUCKET_MS + 1):
            stamps, records = self._bucket(record_filter.application, bucket)
            low = bisect.bisect_left(stamps, start_ms)
            high = bisect.bisect_left(stamps, end_ms)
            if record_filter.equals:
                selected.extend(r for r in records[low:high] if record_filter.accepts(r))
            else:
                selected.extend(records[low:high])
        return selected

    def _bucket(self, application: str, bucket: int) -> tuple[list[int], list[LogRecord]]:
        key = (application, bucket)
        with self._lock:
            cached = self._buckets.get(key)
            if cached is None:
                records = list(self._generate(application, bucket))
                cached = ([r.ts_ms for r in records], records)
                self._buckets[key] = cached
            return cached

    def _generate(self, application: str, bucket: int) -> Iterator[LogRecord]:
        start = max(bucket * BUCKET_MS, self.start_ms)
        end = min((bucket + 1) * BUCKET_MS, self.end_ms)
        if start >= end:
            return

        # String seeds are hashed with SHA-512, so the stream is stable across processes.
        rng = random.Random(f"{self.seed}:{application}:{bucket}")
        expected = self._per_ms * (end - start)
        count = int(expected) + (1 if rng.random() < expected - int(expected) else 0)
        width = end - start
        keys = sorted(
            (start + int(rng.random() * width), f"{rng.getrandbits(80):020x}") for _ in range(count)
        )
        index = f"cm-logs-{application}-{time.strftime('%Y.%m.%d', time.gmtime(start / 1000))}"
        stamps = _TimestampFormatter()
        for ts_ms, record_id in keys:
            source = _make_source(rng.getrandbits(64), application, self.domains)
            source["@timestamp"] = stamps.format(ts_ms)
            source["trace_id"] = f"{rng.getrandbits(128):032x}"
            yield LogRecord(ts_ms, record_id, source, index)


def _make_source(bits: int, application: str, domains: tuple[str, ...]) -> dict[str, Any]:
    # One 64-bit draw feeds every choice of the record: far cheaper than a call per field.
    bits, level_index = divmod(bits, len(_LEVELS))
    bits, service_index = divmod(bits, len(_SERVICES))
    bits, domain_index = divmod(bits, len(domains))
    bits, template_index = divmod(bits, len(_MESSAGES))
    bits, number = divmod(bits, 90_000)
    bits, millis = divmod(bits, 5000)
    bits, small = divmod(bits, 100)
    level = _LEVELS[level_index]
    numbers = {"n": number + 10_000, "ms": millis, "k": small % 9, "pct": small}
    source: dict[str, Any] = {
        "@timestamp": "",
        "level": level,
        "message": _MESSAGES[template_index] % numbers,
        "service": _SERVICES[service_index],
        "host": _HOSTS[bits & 0x7F],
        "status": _STATUS_BY_LEVEL[level],
        "domain": domains[domain_index],
        "application": application,
        "app_type": "ec2" if bits & 0x80 else "caas",
        "trace_id": "",
        "duration_ms": millis,
    }
    bits >>= 8
    if application == "eventops":
        source["log_group"] = _EVENTOPS_GROUPS[bits % 3]
        source["tenant"] = _TENANTS[(bits >> 2) % 2]
        source["stage"] = _STAGES[(bits >> 3) % 3]
        bits >>= 5
    if level == "ERROR":
        # Error records carry a stack trace, so record sizes range up to several KB.
        source["stack_trace"] = _STACK_TRACES[bits % len(_STACK_TRACES)]
    elif bits & 0x7 < 2:
        source["attributes"] = _ATTRIBUTES[(bits >> 3) % len(_ATTRIBUTES)]
    return source


class _TimestampFormatter:
    """Formats ascending epoch milliseconds, reusing the text of the second being formatted."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def format(self, ts_ms: int) -> str:
        seconds, millis = divmod(ts_ms, 1000)
        if seconds != self._second:
            self._second = seconds
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        return f"{self._prefix}.{millis:03d}Z"


def _build_stack_traces() -> tuple[str, ...]:
    rng = random.Random("centralmon-stack-traces")
    traces = []
    for _ in range(64):
        service = rng.choice(_SERVICES)
        frames = "".join(
            rng.choice(_FRAMES).format(svc=service, k=rng.randrange(10, 900))
            for _ in range(rng.randrange(4, 60))
        )
        traces.append(f"Traceback (most recent call last):\n{frames}TimeoutError: upstream")
    return tuple(traces)


def _build_attributes() -> tuple[dict[str, str], ...]:
    rng = random.Random("centralmon-attributes")
    return tuple(
        {f"attr_{i}": f"value-{rng.getrandbits(40):x}" for i in range(8)} for _ in range(32)
    )


_STACK_TRACES = _build_stack_traces()
_ATTRIBUTES = _build_attributes()


def format_timestamp(ts_ms: int) -> str:
    """Return epoch milliseconds as ISO 8601 UTC with millisecond precision."""
    seconds, millis = divmod(ts_ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def to_epoch_ms(instant: datetime) -> int:
    """Return a timezone-aware datetime as epoch milliseconds (microseconds floored)."""
    delta = instant.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000


def from_epoch_ms(ts_ms: int) -> datetime:
    """Return epoch milliseconds as a timezone-aware UTC datetime."""
    return datetime.fromtimestamp(ts_ms / 1000, UTC)
