"""Reading closed segments back: the rows of a time window, for the lake's live tables.

Pruning is exact and cheap: the ``date=`` directories hold only their day's rows, so only
the window's days are listed; within a day each segment's footer statistics (min and max of
the time column) decide whether it is opened. The name's first timestamp orders segments
but cannot bound them, since rows of one segment need not arrive in time order (depth
snapshots and diffs share a stream). Partial and corrupt files are never read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from realtime.archive.layout import US_PER_DAY, day_dir, parse_name
from realtime.archive.schemas import SCHEMAS, TIME_COLUMNS
from realtime.market.arrow_schemas import TIMESTAMP_US


@dataclass(frozen=True)
class Segment:
    """One closed segment and what its footer says."""

    path: Path
    kind: str
    first_ts_us: int
    seq: int
    rows: int
    min_ts_us: int | None
    """Smallest time in the segment (None if the footer has no statistics)."""
    max_ts_us: int | None


def find_segments(
    directory: Path, kind: str, start_us: int, end_us: int, *, time_column: str | None = None
) -> list[Segment]:
    """The closed segments of ``kind`` that may hold rows of ``[start_us, end_us)``, in the
    order they were started."""
    column = time_column or TIME_COLUMNS[kind]
    found = []
    if start_us >= end_us:
        return found
    for day in range(start_us // US_PER_DAY, (end_us - 1) // US_PER_DAY + 1):
        folder = day_dir(directory, kind, day)
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            name = parse_name(path)
            if name is None or name.kind != kind:
                continue
            metadata = pq.read_metadata(path)
            low, high = _time_range(metadata, column)
            if low is not None and high is not None and (high < start_us or low >= end_us):
                continue
            found.append(
                Segment(path, kind, name.first_ts_us, name.seq, metadata.num_rows, low, high)
            )
    return sorted(found, key=lambda segment: (segment.first_ts_us, segment.seq))


def read_rows(
    segments: list[Segment],
    kind: str,
    start_us: int,
    end_us: int,
    *,
    schema: pa.Schema | None = None,
    time_column: str | None = None,
) -> pa.Table:
    """The rows of ``segments`` in ``[start_us, end_us)``, segment by segment in order."""
    schema = schema or SCHEMAS[kind]
    column = ds.field(time_column or TIME_COLUMNS[kind])
    start, end = pa.scalar(start_us, TIMESTAMP_US), pa.scalar(end_us, TIMESTAMP_US)
    window = (column >= start) & (column < end)
    parts = [pq.read_table(segment.path, schema=schema, filters=window) for segment in segments]
    return pa.concat_tables(parts) if parts else schema.empty_table()


def read_segments(directory: Path, kind: str, start_us: int, end_us: int) -> pa.Table:
    """The captured rows of ``kind`` in ``[start_us, end_us)`` from closed segments."""
    return read_rows(find_segments(directory, kind, start_us, end_us), kind, start_us, end_us)


def _time_range(metadata: pq.FileMetaData, column: str) -> tuple[int | None, int | None]:
    """Min and max of ``column`` over the row groups (raw int64 µs), None if not recorded."""
    low: int | None = None
    high: int | None = None
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        for index in range(row_group.num_columns):
            chunk = row_group.column(index)
            if chunk.path_in_schema != column:
                continue
            stats = chunk.statistics
            if stats is None or not stats.has_min_max:
                return None, None
            low = stats.min_raw if low is None else min(low, stats.min_raw)
            high = stats.max_raw if high is None else max(high, stats.max_raw)
    return low, high
