"""The segment writer: append-only Parquet files, rotated by age, size and UTC day.

Rows are buffered and written as one Parquet row group per ``row_group_rows`` rows, plus
what remains when the segment closes. A segment is written as ``….parquet.partial`` and
renamed to ``….parquet`` when it is closed: after ``max_age_s`` (from its first row, on
the monotonic clock), once ``max_bytes`` have been written, when a row of another UTC day
arrives, when the wall clock passes its day's midnight, or on ``close()``. Readers read
only ``.parquet`` files, and a closed file is never opened for writing again.

``flush()`` (the archive role calls it every second) closes what is due but does not write
a short row group: an open segment cannot be read before its footer anyway, and per-second
row groups made a five-minute segment about a hundred times larger, nearly all of it
footer (each row group's column statistics).

A full disk (``ENOSPC``, ``EDQUOT``, or ``EFBIG`` at a file-size limit) stops nothing: the
bytes the Parquet writer produces are held in memory until they are on disk, so a failed
write leaves the segment whole, only shorter; the writer counts the failure
(``btc_capture_write_errors_total{kind,errno}``), logs it, and retries the same step with
a capped backoff (``RETRY_INITIAL_S`` doubling to ``RETRY_MAX_S``, on the writer's clock)
at the next ``append`` or ``flush``. Rows arriving meanwhile wait in a buffer of at most
``max_held_bytes`` (``btc_queue_depth{queue="capture-<kind>"}`` rows); beyond it the oldest
are dropped and counted (``btc_queue_dropped_total``). When space returns, what was held is
written in order. Any other ``OSError`` (the file gone, ``EIO``) abandons the segment in
flight: its file is moved to ``.parquet.corrupt``, its rows are counted as dropped, and
the next rows start a new segment. ``append``, ``flush`` and ``close`` never raise
``OSError``.

A writer owns its kind's directory (``realtime.archive.ownership``): it takes the kind's
lock at construction, before recovering leftovers, and raises ``CaptureInUse`` if another
live writer holds it; ``close()`` releases it once everything is written, and the next
segment opened takes it again. If another writer took the kind meanwhile, that open is a
refused write like a full disk's (``errno="EBUSY"``): rows held, retried with the backoff.

What a crash loses, honestly: a Parquet file is readable only once its footer is written,
which happens when the segment is closed. The rows of a segment still open at the crash
are lost (those already written as row groups are on disk, but unreadable without a
page-by-page salvage this code does not attempt): at most one segment per kind,
``max_age_s`` or ``max_bytes`` of data. On start, a leftover ``.partial`` whose footer is
intact (the crash came between closing and renaming) is finalised; any other is moved
aside to ``.parquet.corrupt``, kept for inspection and counted in ``Recovery``. The hole
it leaves in ``bronze.live_trades`` is what that table's id-contiguity check reports.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from realtime.archive.layout import (
    CLOSED,
    CORRUPT,
    PARTIAL,
    US_PER_DAY,
    SegmentName,
    day_dir,
    day_number,
)
from realtime.archive.ownership import CaptureInUse, KindLock
from realtime.clock import Clock, SystemClock
from realtime.service.metrics import Metrics

log = logging.getLogger(__name__)

SegmentClosed = Callable[[str, Path, int], None]
"""``(kind, path, rows)`` of a segment just closed (the ``segments{kind}`` metric)."""

ROW_GROUP_ROWS = 50_000
COMPRESSION = "zstd"
MAX_HELD_BYTES = 64 << 20
"""Rows held per kind while the disk refuses writes (Arrow bytes, about 10 minutes of
trades at a busy 2,000 a second)."""
RETRY_INITIAL_S = 1.0
RETRY_MAX_S = 30.0
SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
"""Failures that pass when space returns: the segment is kept and the step retried."""


@dataclass(frozen=True)
class Recovery:
    """What was found of a previous run: partials finalised, partials moved aside."""

    finalized: tuple[Path, ...] = ()
    corrupt: tuple[Path, ...] = ()


def recover_partials(kind_dir: Path) -> Recovery:
    """Finalise the readable ``.partial`` files under ``kind_dir``; move the others to
    ``.parquet.corrupt``. Only for a directory no live writer uses: its lock is held."""
    finalized, corrupt = [], []
    for partial in sorted(Path(kind_dir).glob(f"date=*/*{PARTIAL}")):
        stem = partial.name.removesuffix(PARTIAL)
        try:
            pq.read_metadata(partial)
        except (pa.ArrowInvalid, OSError) as error:
            target = partial.with_name(stem + CORRUPT)
            os.replace(partial, target)
            corrupt.append(target)
            log.warning(
                "unreadable capture segment moved aside (its rows are lost)",
                extra={"path": str(target), "error": str(error)},
            )
        else:
            target = partial.with_name(stem + CLOSED)
            os.replace(partial, target)
            finalized.append(target)
            log.info("capture segment left by a crash finalised", extra={"path": str(target)})
    return Recovery(tuple(finalized), tuple(corrupt))


class _HeldBytes:
    """The file object under a segment's ``ParquetWriter``: what it writes is held in
    memory until ``drain`` has it in the file, so a write refused by a full disk leaves
    writer and file consistent (the file is the held bytes short, nothing else)."""

    def __init__(self, file: BinaryIO) -> None:
        self.file = file
        self.held = bytearray()
        self.position = 0
        """Bytes the Parquet writer has written: on disk plus held."""

    @property
    def closed(self) -> bool:
        return self.file.closed

    def write(self, data: bytes) -> int:
        self.held += data
        self.position += len(data)
        return len(data)

    def flush(self) -> None:
        """Nothing: ``drain`` is what writes (called by the segment writer)."""

    def drain(self) -> None:
        """Write the held bytes to the file; on ``OSError`` what did not go stays held."""
        view = memoryview(self.held)
        written = 0
        try:
            while written < len(view):
                written += self.file.write(view[written:]) or 0
        finally:
            view.release()
            del self.held[:written]


@dataclass
class _OpenSegment:
    partial: Path
    closed: Path
    file: BinaryIO
    sink: _HeldBytes
    writer: pq.ParquetWriter
    rows: int = 0
    synced: bool = False


class SegmentWriter:
    """Append-only segments of one ``kind`` under ``directory / kind``; the kind's owner.

    Not thread-safe: one writer per kind, used from one thread (the service's event loop).
    Raises ``CaptureInUse`` at construction if another live writer owns the kind.
    """

    def __init__(
        self,
        directory: Path,
        kind: str,
        schema: pa.Schema,
        *,
        max_age_s: float,
        max_bytes: int,
        clock: Clock | None = None,
        time_column: str = "event_time",
        row_group_rows: int = ROW_GROUP_ROWS,
        on_segment_closed: SegmentClosed | None = None,
        metrics: Metrics | None = None,
        max_held_bytes: int = MAX_HELD_BYTES,
    ) -> None:
        if max_age_s <= 0 or max_bytes <= 0 or row_group_rows <= 0 or max_held_bytes <= 0:
            raise ValueError(
                "max_age_s, max_bytes, row_group_rows and max_held_bytes must be positive"
            )
        self.directory = Path(directory)
        self.kind = kind
        self.schema = schema
        self.max_age_s = max_age_s
        self.max_bytes = max_bytes
        self.clock = clock or SystemClock()
        self.time_column = time_column
        self.row_group_rows = row_group_rows
        self.on_segment_closed = on_segment_closed
        self.metrics = metrics
        self.max_held_bytes = max_held_bytes
        self.segments_closed = 0
        self.rows_appended = 0
        self.rows_dropped = 0
        self.write_errors = 0
        self._lock = KindLock(self.directory / kind)
        self.recovery = Recovery()
        self._take_ownership()
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._segment: _OpenSegment | None = None
        self._closing: _OpenSegment | None = None
        """A segment with its footer written, not yet on disk and renamed (a full disk)."""
        self._day: int | None = None
        """UTC day of the current segment (open or still only buffered)."""
        self._first_ts_us = 0
        self._started = 0.0
        self._seq = 0
        self._stalled = False
        """The last write failed: new rows are held until a retry succeeds."""
        self._held: deque[pa.RecordBatch] = deque()
        self._held_rows = 0
        self._held_bytes = 0
        self._retry_at = 0.0
        self._backoff_s = RETRY_INITIAL_S
        self._next_drop_log = 0.0
        queue = f"capture-{kind}"
        self._depth_gauge = metrics.queue_depth.labels(queue=queue) if metrics else None
        self._dropped_counter = metrics.queue_dropped.labels(queue=queue) if metrics else None

    def append(self, rows: pa.RecordBatch | pa.Table) -> None:
        """Buffer ``rows`` (this writer's schema); rotate first where their day changes.
        Never raises ``OSError``: a refused write holds the rows (see the module)."""
        if rows.schema != self.schema:
            raise ValueError(f"{self.kind}: rows do not have the segment schema:\n{rows.schema}")
        self._retry_if_due()
        batches = rows.to_batches() if isinstance(rows, pa.Table) else [rows]
        for batch in batches:
            if not batch.num_rows:
                continue
            times = pc.cast(batch.column(self.time_column), pa.int64()).to_numpy()
            days = times // US_PER_DAY
            cuts = [0, *(np.flatnonzero(np.diff(days)) + 1).tolist(), len(days)]
            for start, end in itertools.pairwise(cuts):
                run = batch.slice(start, end - start)
                if self._stalled:
                    self._hold(run)
                else:
                    self._place(run)
            self.rows_appended += batch.num_rows
        if not self._stalled:
            self._guarded(self._rotate_if_due)
        self._report_depth()

    def flush(self) -> None:
        """Close the segment if it is due (age, size, midnight); buffered rows of a segment
        that stays open wait for a full row group or the close. Retries a refused write
        once its backoff has passed."""
        self._retry_if_due()
        if not self._stalled:
            self._guarded(self._rotate_if_due)
        self._report_depth()

    def close(self) -> None:
        """Write what is buffered or held and close the open segment (retrying a refused
        write now); then give up the kind's lock. The writer stays usable."""
        if self._stalled:
            self._resume()
        if not self._stalled:
            self._guarded(self._rotate)
        self._report_depth()
        if self._stalled:
            log.error(
                "capture closed with rows the disk refused (kept while this writer lives)",
                extra={"kind": self.kind, "rows": self.unwritten_rows},
            )
            return
        self._lock.release()

    @property
    def pending_rows(self) -> int:
        return self._pending_rows

    @property
    def held_rows(self) -> int:
        """Rows waiting for the disk to take writes again."""
        return self._held_rows

    @property
    def unwritten_rows(self) -> int:
        """Rows appended and not yet in a closed segment's file on disk."""
        in_segments = sum(s.rows for s in (self._segment, self._closing) if s is not None)
        return self._held_rows + self._pending_rows + in_segments

    # -- writing -------------------------------------------------------------------------

    def _place(self, run: pa.RecordBatch) -> None:
        """Append one single-day run to the segment's buffer; on a refused write the
        writer stalls, and the run is held if it was not yet taken."""
        times = pc.cast(run.column(self.time_column), pa.int64())
        first_ts_us = times[0].as_py()
        day = first_ts_us // US_PER_DAY
        taken = False
        try:
            if self._day is not None and day != self._day:
                self._rotate()
            if self._day is None:
                self._day, self._first_ts_us = day, first_ts_us
                self._started = self.clock.monotonic()
            self._pending.append(run)
            self._pending_rows += run.num_rows
            taken = True
            if self._pending_rows >= self.row_group_rows:
                self._write_pending()
        except OSError as error:
            if not taken:
                self._hold(run, oldest=True)
            self._failed(error)

    def _rotate_if_due(self) -> None:
        if self._day is None:
            return
        aged = self.clock.monotonic() - self._started >= self.max_age_s
        full = self._segment is not None and self._segment.sink.position >= self.max_bytes
        past_midnight = day_number(int(self.clock.time() * 1_000_000)) > self._day
        if aged or full or past_midnight:
            self._rotate()

    def _write_pending(self) -> None:
        if not self._pending_rows:
            return
        if self._segment is None:
            self._segment = self._open()
        segment = self._segment
        rows = pa.Table.from_batches(self._pending, schema=self.schema)
        segment.writer.write_table(rows, row_group_size=rows.num_rows)  # into held bytes
        segment.rows += rows.num_rows
        self._pending.clear()
        self._pending_rows = 0
        segment.sink.drain()

    def _open(self) -> _OpenSegment:
        assert self._day is not None
        try:
            self._take_ownership()
        except CaptureInUse as error:
            # Another writer took the kind after close() gave it up: a refused write like
            # any other (rows held, counted as EBUSY, retried with the backoff), never an
            # error that ends the role.
            raise OSError(errno.EBUSY, str(error)) from error
        directory = day_dir(self.directory, self.kind, self._day)
        directory.mkdir(parents=True, exist_ok=True)
        while True:
            stem = SegmentName(self.kind, self._first_ts_us, self._seq).stem()
            self._seq += 1
            # A restarted writer may meet its predecessor's names: never reuse one.
            if not any((directory / (stem + end)).exists() for end in (CLOSED, PARTIAL, CORRUPT)):
                break
        partial = directory / (stem + PARTIAL)
        # Unbuffered: a row group drained is in the OS, whatever becomes of this process.
        file = partial.open("xb", buffering=0)
        sink = _HeldBytes(file)
        writer = pq.ParquetWriter(sink, self.schema, compression=COMPRESSION)
        return _OpenSegment(partial, directory / (stem + CLOSED), file, sink, writer)

    def _rotate(self) -> None:
        self._write_pending()
        segment = self._segment
        self._segment, self._day = None, None
        if segment is None:
            return
        segment.writer.close()  # the footer, into held bytes
        self._closing = segment
        self._finish_closing()

    def _finish_closing(self) -> None:
        """Footer on disk, synced, renamed: each step once, resumable after a failure."""
        segment = self._closing
        assert segment is not None
        segment.sink.drain()
        if not segment.synced:
            os.fsync(segment.file.fileno())  # the footer is on disk before the name says closed
            segment.synced = True
        if not segment.file.closed:
            segment.file.close()
        os.replace(segment.partial, segment.closed)
        self._closing = None
        self.segments_closed += 1
        self._closed(segment.closed, segment.rows)

    def _closed(self, path: Path, rows: int) -> None:
        if self.on_segment_closed is not None:
            self.on_segment_closed(self.kind, path, rows)

    def _take_ownership(self) -> None:
        """Hold the kind's lock; on taking it, recover what a dead writer left."""
        if self._lock.held:
            return
        self._lock.acquire()
        self.recovery = recover_partials(self.directory / self.kind)
        for path in self.recovery.finalized:
            self._closed(path, pq.read_metadata(path).num_rows)

    # -- refused writes ------------------------------------------------------------------

    def _guarded(self, step: Callable[[], None]) -> None:
        try:
            step()
        except OSError as error:
            self._failed(error)

    def _failed(self, error: OSError) -> None:
        """Count and log a refused write; stall until the retry; give up the segment in
        flight unless the failure is one that passes when space returns."""
        self.write_errors += 1
        code = errno.errorcode.get(error.errno or 0, str(error.errno))
        if self.metrics is not None:
            self.metrics.capture_write_errors.labels(kind=self.kind, errno=code).inc()
        space = error.errno in SPACE_ERRNOS
        log.error(
            "capture write failed; rows held and the write retried",
            extra={
                "kind": self.kind,
                "errno": code,
                "error": str(error),
                "keeps_segment": space,
                "retry_in_s": self._backoff_s,
                "held_rows": self._held_rows,
            },
        )
        if not space:
            self._abandon()
        self._stalled = True
        self._retry_at = self.clock.monotonic() + self._backoff_s
        self._backoff_s = min(self._backoff_s * 2, RETRY_MAX_S)

    def _abandon(self) -> None:
        """Give up the segments in flight after a failure that space will not cure: their
        files are moved aside as ``.parquet.corrupt`` where they still exist."""
        for segment in (self._closing, self._segment):
            if segment is None:
                continue
            with contextlib.suppress(OSError):
                segment.file.close()
            with contextlib.suppress(OSError):
                os.replace(
                    segment.partial,
                    segment.partial.with_name(segment.partial.name.removesuffix(PARTIAL) + CORRUPT),
                )
            self._dropped(segment.rows)
            log.error(
                "capture segment abandoned after a write failure (its rows are lost)",
                extra={"kind": self.kind, "path": str(segment.partial), "rows": segment.rows},
            )
        if self._segment is not None:
            self._segment = None
            if not self._pending_rows:
                self._day = None
        self._closing = None

    def _retry_if_due(self) -> None:
        if self._stalled and self.clock.monotonic() >= self._retry_at:
            self._resume()

    def _resume(self) -> None:
        """Retry the refused step; if it goes through, write what was held, in order."""
        try:
            if self._closing is not None:
                self._finish_closing()
            if self._segment is not None:
                self._segment.sink.drain()
            elif self._pending_rows >= self.row_group_rows:
                self._write_pending()  # the segment could not be opened
        except OSError as error:
            self._failed(error)
            return
        self._stalled = False
        self._backoff_s = RETRY_INITIAL_S
        log.info("capture writes again", extra={"kind": self.kind, "held_rows": self._held_rows})
        while self._held and not self._stalled:
            run = self._held.popleft()
            self._held_rows -= run.num_rows
            self._held_bytes -= run.nbytes
            self._place(run)

    def _hold(self, run: pa.RecordBatch, *, oldest: bool = False) -> None:
        """Keep ``run`` for after the retry; beyond ``max_held_bytes`` drop the oldest."""
        if oldest:
            self._held.appendleft(run)
        else:
            self._held.append(run)
        self._held_rows += run.num_rows
        self._held_bytes += run.nbytes
        while self._held_bytes > self.max_held_bytes and len(self._held) > 1:
            dropped = self._held.popleft()
            self._held_rows -= dropped.num_rows
            self._held_bytes -= dropped.nbytes
            self._dropped(dropped.num_rows)
            if self.clock.monotonic() >= self._next_drop_log:
                self._next_drop_log = self.clock.monotonic() + RETRY_MAX_S
                log.error(
                    "capture buffer full while the disk refuses writes: oldest rows dropped",
                    extra={
                        "kind": self.kind,
                        "rows_dropped_total": self.rows_dropped,
                        "max_held_bytes": self.max_held_bytes,
                    },
                )

    def _dropped(self, rows: int) -> None:
        self.rows_dropped += rows
        if self._dropped_counter is not None:
            self._dropped_counter.inc(rows)

    def _report_depth(self) -> None:
        if self._depth_gauge is not None:
            self._depth_gauge.set(self._held_rows)
