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

import itertools
import logging
import os
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
from realtime.clock import Clock, SystemClock

log = logging.getLogger(__name__)

SegmentClosed = Callable[[str, Path, int], None]
"""``(kind, path, rows)`` of a segment just closed (the ``segments{kind}`` metric)."""

ROW_GROUP_ROWS = 50_000
COMPRESSION = "zstd"


@dataclass(frozen=True)
class Recovery:
    """What was found of a previous run: partials finalised, partials moved aside."""

    finalized: tuple[Path, ...] = ()
    corrupt: tuple[Path, ...] = ()


def recover_partials(kind_dir: Path) -> Recovery:
    """Finalise the readable ``.partial`` files under ``kind_dir``; move the others to
    ``.parquet.corrupt``. Only for a directory no running writer uses."""
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


@dataclass
class _OpenSegment:
    partial: Path
    closed: Path
    file: BinaryIO
    writer: pq.ParquetWriter


class SegmentWriter:
    """Append-only segments of one ``kind`` under ``directory / kind``.

    Not thread-safe: one writer per kind, used from one thread (the service's event loop).
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
    ) -> None:
        if max_age_s <= 0 or max_bytes <= 0 or row_group_rows <= 0:
            raise ValueError("max_age_s, max_bytes and row_group_rows must be positive")
        self.directory = Path(directory)
        self.kind = kind
        self.schema = schema
        self.max_age_s = max_age_s
        self.max_bytes = max_bytes
        self.clock = clock or SystemClock()
        self.time_column = time_column
        self.row_group_rows = row_group_rows
        self.on_segment_closed = on_segment_closed
        self.recovery = recover_partials(self.directory / kind)
        for path in self.recovery.finalized:
            self._closed(path, pq.read_metadata(path).num_rows)
        self.segments_closed = 0
        self.rows_appended = 0
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._segment: _OpenSegment | None = None
        self._segment_rows = 0
        self._day: int | None = None
        """UTC day of the current segment (open or still only buffered)."""
        self._first_ts_us = 0
        self._started = 0.0
        self._seq = 0

    def append(self, rows: pa.RecordBatch | pa.Table) -> None:
        """Buffer ``rows`` (this writer's schema); rotate first where their day changes."""
        if rows.schema != self.schema:
            raise ValueError(f"{self.kind}: rows do not have the segment schema:\n{rows.schema}")
        batches = rows.to_batches() if isinstance(rows, pa.Table) else [rows]
        for batch in batches:
            if not batch.num_rows:
                continue
            times = pc.cast(batch.column(self.time_column), pa.int64()).to_numpy()
            days = times // US_PER_DAY
            cuts = [0, *(np.flatnonzero(np.diff(days)) + 1).tolist(), len(days)]
            for start, end in itertools.pairwise(cuts):
                run = batch.slice(start, end - start)
                self._append_run(run, int(days[start]), int(times[start]))
            self.rows_appended += batch.num_rows
        self._rotate_if_due()

    def flush(self) -> None:
        """Close the segment if it is due (age, size, midnight); buffered rows of a segment
        that stays open wait for a full row group or the close."""
        self._rotate_if_due()

    def close(self) -> None:
        """Write what is buffered and close the open segment (the writer stays usable)."""
        self._rotate()

    @property
    def pending_rows(self) -> int:
        return self._pending_rows

    def _append_run(self, run: pa.RecordBatch, day: int, first_ts_us: int) -> None:
        if self._day is not None and day != self._day:
            self._rotate()
        if self._day is None:
            self._day, self._first_ts_us, self._started = day, first_ts_us, self.clock.monotonic()
        self._pending.append(run)
        self._pending_rows += run.num_rows
        if self._pending_rows >= self.row_group_rows:
            self._write_pending()

    def _rotate_if_due(self) -> None:
        if self._day is None:
            return
        aged = self.clock.monotonic() - self._started >= self.max_age_s
        full = self._segment is not None and self._segment.file.tell() >= self.max_bytes
        past_midnight = day_number(int(self.clock.time() * 1_000_000)) > self._day
        if aged or full or past_midnight:
            self._rotate()

    def _write_pending(self) -> None:
        if not self._pending_rows:
            return
        if self._segment is None:
            self._segment = self._open()
        rows = pa.Table.from_batches(self._pending, schema=self.schema)
        self._segment.writer.write_table(rows, row_group_size=rows.num_rows)
        self._segment_rows += rows.num_rows
        self._pending.clear()
        self._pending_rows = 0

    def _open(self) -> _OpenSegment:
        assert self._day is not None
        directory = day_dir(self.directory, self.kind, self._day)
        directory.mkdir(parents=True, exist_ok=True)
        while True:
            stem = SegmentName(self.kind, self._first_ts_us, self._seq).stem()
            self._seq += 1
            # A restarted writer may meet its predecessor's names: never reuse one.
            if not any((directory / (stem + end)).exists() for end in (CLOSED, PARTIAL, CORRUPT)):
                break
        partial = directory / (stem + PARTIAL)
        # Unbuffered: a row group written is in the OS, whatever becomes of this process.
        file = partial.open("xb", buffering=0)
        writer = pq.ParquetWriter(file, self.schema, compression=COMPRESSION)
        return _OpenSegment(partial, directory / (stem + CLOSED), file, writer)

    def _rotate(self) -> None:
        self._write_pending()
        segment, rows = self._segment, self._segment_rows
        self._segment, self._segment_rows, self._day = None, 0, None
        if segment is None:
            return
        segment.writer.close()
        segment.file.flush()
        os.fsync(segment.file.fileno())  # the footer is on disk before the name says closed
        segment.file.close()
        os.replace(segment.partial, segment.closed)
        self.segments_closed += 1
        self._closed(segment.closed, rows)

    def _closed(self, path: Path, rows: int) -> None:
        if self.on_segment_closed is not None:
            self.on_segment_closed(self.kind, path, rows)
