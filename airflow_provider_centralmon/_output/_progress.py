"""Progress counters of an export, reported to a callback at a steady pace."""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_PROGRESS_INTERVAL_S = 30.0


class ExportPhase(enum.Enum):
    """What an export is doing."""

    #: Receiving records and sorting them into local runs.
    COLLECTING = "collecting"
    #: Merging the runs into parts on the target storage.
    WRITING = "writing"
    #: Moving the parts to their final names and writing the manifest.
    PUBLISHING = "publishing"
    PUBLISHED = "published"


@dataclass(frozen=True, slots=True)
class ProgressSnapshot:
    """The counters of an export at one instant."""

    phase: ExportPhase
    #: Pages the caller said it fetched.
    pages: int
    #: Records handed to the writer.
    records: int
    #: Encoded bytes of those records.
    bytes: int
    #: Records written into parts so far (after sorting and dropping duplicates).
    records_written: int
    #: Parts completed so far.
    parts_written: int
    #: Seconds since the writer was created.
    elapsed_s: float

    @property
    def records_per_s(self) -> float:
        """Records handed over per second since the start."""
        return self.records / self.elapsed_s if self.elapsed_s > 0 else 0.0


ProgressCallback = Callable[[ProgressSnapshot], None]


class ProgressMeter:
    """Count an export's progress and call back at most once per interval.

    :param on_progress: called with a snapshot when at least ``interval_s`` passed since the
        last call; default: none (the counters can still be read)
    :param interval_s: seconds between two calls. Default: 30.
    :param clock: monotonic clock in seconds. Default: ``time.monotonic``.
    """

    def __init__(
        self,
        *,
        on_progress: ProgressCallback | None = None,
        interval_s: float = DEFAULT_PROGRESS_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._on_progress = on_progress
        self._interval_s = interval_s
        self._clock = clock
        self._started = clock()
        self._next_report = self._started + interval_s
        self.phase = ExportPhase.COLLECTING
        self.pages = 0
        self.records = 0
        self.bytes = 0
        self.records_written = 0
        self.parts_written = 0

    def snapshot(self) -> ProgressSnapshot:
        """Return the counters now."""
        return ProgressSnapshot(
            phase=self.phase,
            pages=self.pages,
            records=self.records,
            bytes=self.bytes,
            records_written=self.records_written,
            parts_written=self.parts_written,
            elapsed_s=self._clock() - self._started,
        )

    def tick(self) -> None:
        """Call back if the interval has passed; cheap enough to call for every record."""
        if self._on_progress is None:
            return
        now = self._clock()
        if now >= self._next_report:
            self._next_report = now + self._interval_s
            self._on_progress(self.snapshot())

    def report(self) -> None:
        """Call back now, whatever the interval, e.g. when the phase changes."""
        if self._on_progress is not None:
            self._next_report = self._clock() + self._interval_s
            self._on_progress(self.snapshot())
