"""The completeness proof of bronze aggregate trades (pure logic).

Binance numbers aggregate trades consecutively, so a time window holds every trade when its
ids have no duplicate, ``max - min + 1 == count``, and they join the neighbouring windows'
ids without a hole: the last id before the window is ``min - 1`` and the first id after it
is ``max + 1``. An edge whose neighbour is not loaded yet cannot be proven here; it is
proven when the neighbour is written, since its check looks back across the same edge.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

import numpy as np


class IdRange(NamedTuple):
    """Inclusive range of aggregate trade ids."""

    first: int
    last: int

    def __str__(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}-{self.last}"

    @property
    def size(self) -> int:
        return self.last - self.first + 1


class Edge(StrEnum):
    JOINED = "joined"
    HOLE = "hole"
    UNKNOWN = "neighbour not loaded"


@dataclass(frozen=True)
class CompletenessProof:
    """The verdict on one window's ids, with everything needed to repair it."""

    rows: int
    first_id: int | None
    last_id: int | None
    duplicates: int
    """Rows beyond the first for any id."""
    missing_inside: tuple[IdRange, ...]
    before: Edge
    after: Edge
    missing_before: IdRange | None
    """The hole between the previous window's last id and this window's first id."""
    missing_after: IdRange | None

    @property
    def missing(self) -> tuple[IdRange, ...]:
        edges = (self.missing_before, *self.missing_inside, self.missing_after)
        return tuple(r for r in edges if r is not None)

    @property
    def missing_ids(self) -> int:
        return sum(r.size for r in self.missing)

    @property
    def passed(self) -> bool:
        return self.duplicates == 0 and not self.missing

    def describe(self) -> str:
        if self.passed and not self.rows:
            return f"no aggregate trade; edges {self.before.value}, {self.after.value}"
        if self.passed:
            return f"{self.rows} aggregate trades, ids {self.first_id}-{self.last_id}, complete"
        parts = []
        if self.missing:
            ranges = ", ".join(str(r) for r in self.missing)
            parts.append(f"{self.missing_ids} ids missing: {ranges}")
        if self.duplicates:
            parts.append(f"{self.duplicates} duplicate rows")
        return "; ".join(parts)


def prove_completeness(
    ids: np.ndarray, previous_last_id: int | None, next_first_id: int | None
) -> CompletenessProof:
    """Check the ids of one window against themselves and the neighbouring windows.

    ``previous_last_id`` is the largest id stored before the window, ``next_first_id`` the
    smallest after it; ``None`` when that neighbour is not loaded.
    """
    ids = np.sort(np.asarray(ids, dtype=np.int64))
    # On sorted ids a step of 0 is a duplicate; np.unique would sort again (a third of a
    # day's bronze run).
    repeated = np.r_[False, np.diff(ids) == 0] if len(ids) else np.zeros(0, dtype=bool)
    unique = ids[~repeated]
    duplicates = int(repeated.sum())
    if len(unique) == 0:
        # No trade in the window: its edges are proven only together, when both neighbours
        # are loaded and join each other (or leave a hole between them, which is named).
        if previous_last_id is None or next_first_id is None:
            return CompletenessProof(0, None, None, 0, (), Edge.UNKNOWN, Edge.UNKNOWN, None, None)
        hole = (
            IdRange(previous_last_id + 1, next_first_id - 1)
            if next_first_id > previous_last_id + 1
            else None
        )
        edge = Edge.HOLE if hole else Edge.JOINED
        return CompletenessProof(0, None, None, 0, (), edge, edge, hole, None)
    steps = np.diff(unique)
    jumps = np.flatnonzero(steps > 1)
    inside = tuple(IdRange(int(unique[i]) + 1, int(unique[i + 1]) - 1) for i in jumps)
    first, last = int(unique[0]), int(unique[-1])
    missing_before = (
        IdRange(previous_last_id + 1, first - 1)
        if previous_last_id is not None and previous_last_id + 1 < first
        else None
    )
    missing_after = (
        IdRange(last + 1, next_first_id - 1)
        if next_first_id is not None and next_first_id > last + 1
        else None
    )
    return CompletenessProof(
        rows=len(ids),
        first_id=first,
        last_id=last,
        duplicates=duplicates,
        missing_inside=inside,
        before=_edge(previous_last_id, missing_before),
        after=_edge(next_first_id, missing_after),
        missing_before=missing_before,
        missing_after=missing_after,
    )


def _edge(neighbour_id: int | None, hole: IdRange | None) -> Edge:
    if neighbour_id is None:
        return Edge.UNKNOWN
    return Edge.HOLE if hole is not None else Edge.JOINED


US_PER_HOUR = 3_600_000_000


def hours_to_repair(
    proof: CompletenessProof,
    ids: np.ndarray,
    times_us: np.ndarray,
    window: tuple[int, int],
) -> list[int]:
    """Start times (µs) of the hours that may hold the missing ids, for a repair to reload.

    A hole lies between the trades on either side of it, so the hours from the one before
    it to the one after it cover it; at a window's edge that is the edge hour on each side.
    ``ids`` and ``times_us`` are the window's trades (any order).
    """
    order = np.argsort(ids, kind="stable")
    ids, times_us = np.asarray(ids)[order], np.asarray(times_us)[order]
    start_us, end_us = window
    hours: set[int] = set()
    for hole in proof.missing:
        before = np.searchsorted(ids, hole.first) - 1
        after = np.searchsorted(ids, hole.last, side="right")
        low = int(times_us[before]) if before >= 0 else start_us - 1
        high = int(times_us[after]) if after < len(ids) else end_us
        first_hour = low // US_PER_HOUR * US_PER_HOUR
        hours.update(range(first_hour, high // US_PER_HOUR * US_PER_HOUR + 1, US_PER_HOUR))
    return sorted(hours)
