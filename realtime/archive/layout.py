"""Where segments live and what their names say (pure).

``<capture>/<kind>/date=YYYY-MM-DD/<kind>-<first_ts_us>-<seq>.parquet``: the day directory
is the UTC day of every row in the segment (a segment never spans days), ``first_ts_us`` the
time of its first row, ``seq`` what makes the name unique when two segments start in the
same microsecond. The suffix tells the state: ``.parquet.partial`` while written,
``.parquet`` once closed (never changed again), ``.parquet.corrupt`` for a partial left by a
crash that could not be read.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import NamedTuple

US_PER_DAY = 86_400_000_000
CLOSED = ".parquet"
PARTIAL = ".parquet.partial"
CORRUPT = ".parquet.corrupt"


class SegmentName(NamedTuple):
    kind: str
    first_ts_us: int
    seq: int

    def stem(self) -> str:
        return f"{self.kind}-{self.first_ts_us}-{self.seq}"


def day_number(ts_us: int) -> int:
    """Days since the epoch of ``ts_us`` (UTC)."""
    return ts_us // US_PER_DAY


def day_dir(directory: Path, kind: str, day: int) -> Path:
    date = dt.date(1970, 1, 1) + dt.timedelta(days=day)
    return Path(directory) / kind / f"date={date.isoformat()}"


def parse_name(path: Path) -> SegmentName | None:
    """The name of a closed segment file, or None for anything else."""
    if not path.name.endswith(CLOSED):
        return None
    parts = path.name.removesuffix(CLOSED).rsplit("-", 2)
    if len(parts) != 3 or not parts[0]:
        return None
    kind, first_ts, seq = parts
    try:
        return SegmentName(kind, int(first_ts), int(seq))
    except ValueError:
        return None
