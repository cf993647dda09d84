"""Per-second book bars: the depth book's top levels at the end of each second.

Second ``t`` ends with the book after every depth event placed in ``[t, t + 1)`` seconds
(contract v2, ``grid.book``): a diff by ``floor(event_time_us / 1e6)``, a REST snapshot by
the time it was received (it carries no exchange time). The book is Binance's local order
book as kept by :class:`~realtime.market.book_sync.BookSynchroniser`; a second is valid iff
the synchroniser holds a synced book at its end (after all its events). An invalid second
has every value ``NONE``: never synchronised yet, or a gap not yet re-anchored.

``BookBarBuilder`` makes bars from live events one at a time; ``book_bars_from_events``
makes them from a stored sequence by replaying the same builder. Both include the seconds
without book events, which carry the state: the book does not change without events.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from realtime.features.bars import NONE, US_PER_SECOND
from realtime.market.book_sync import DEFAULT_MAX_BUFFERED_DIFFS, BookSynchroniser
from realtime.market.events import DepthDiff, DepthSnapshot

__all__ = [
    "BOOK_LEVELS",
    "BookBar",
    "BookBarBuilder",
    "BookBars",
    "BookEvent",
    "ReceivedSnapshot",
    "book_bars_from_events",
]

BOOK_LEVELS = 5
"""Levels a side summed into the depth of a bar (``book_imbalance_5``)."""


class BookBar(NamedTuple):
    """The depth book at the end of one second; all but ``ts_sec`` are ``NONE`` when invalid."""

    ts_sec: int
    book_update_id: int
    """The synced book's last update id at the end of the second."""
    bid_depth_e8: int
    """Total quantity of the best ``levels`` bids (fewer if the side has fewer)."""
    ask_depth_e8: int
    """Total quantity of the best ``levels`` asks."""


def invalid_bar(ts_sec: int) -> BookBar:
    return BookBar(ts_sec, NONE, NONE, NONE)


class ReceivedSnapshot(NamedTuple):
    """A REST depth snapshot as stored: placed on the grid at ``received_us`` (local clock)."""

    received_us: int
    snapshot: DepthSnapshot


BookEvent = DepthDiff | ReceivedSnapshot
"""One stored book event, in arrival order; a plain ``(received_us, snapshot)`` pair works too."""


class BookBarBuilder:
    """Builds book bars from live depth events in arrival order; a second closes when a later
    one starts (or through :meth:`close_through`).

    The first event opens the first second. An initial book (a source's ``initial_book()``,
    a REST snapshot) is fed with :meth:`add_snapshot` at the first event's time or whenever
    the caller chooses; until a snapshot anchors the diffs, every second is invalid.

    Events for a second that already closed are still applied, since the book must stay
    consistent (a diff cannot be dropped like a late trade), and counted in ``late_events``:
    the seconds they belong to were already published without them.
    """

    def __init__(
        self,
        symbol: str,
        *,
        levels: int = BOOK_LEVELS,
        max_buffered_diffs: int = DEFAULT_MAX_BUFFERED_DIFFS,
    ) -> None:
        if levels < 1:
            raise ValueError(f"levels must be >= 1, got {levels}")
        self.levels = levels
        self.synchroniser = BookSynchroniser(symbol, max_buffered_diffs=max_buffered_diffs)
        """Read ``needs_snapshot``, ``state``, ``last_gap`` and the counters; feed it only
        through this builder, or bars will not match the events."""
        self.open_sec: int | None = None
        self.late_events = 0

    def add_diff(self, diff: DepthDiff) -> list[BookBar]:
        """Apply one diff (placed at ``event_time_us``); return the bars it closed.

        The closed bars hold the book before this diff; buffering, gaps and resyncs are the
        synchroniser's (see its ``on_diff``).
        """
        closed = self._enter(diff.event_time_us // US_PER_SECOND)
        self.synchroniser.on_diff(diff)
        return closed

    def add_snapshot(self, snapshot: DepthSnapshot, received_us: int) -> list[BookBar]:
        """Apply one full REST depth snapshot received at ``received_us``; return closed bars.

        The snapshot may be held until a diff decides whether it fits (see the
        synchroniser's ``on_snapshot``); the book is valid once it is synced.
        """
        closed = self._enter(received_us // US_PER_SECOND)
        self.synchroniser.on_snapshot(snapshot)
        return closed

    def close_through(self, ts_sec: int) -> list[BookBar]:
        """Close every second up to and including ``ts_sec`` (time passed without events)."""
        if self.open_sec is None or ts_sec < self.open_sec:
            return []
        return self._advance(ts_sec + 1)

    def current_bar(self, ts_sec: int) -> BookBar:
        """The bar second ``ts_sec`` would get if it ended now (the book as it stands)."""
        book = self.synchroniser.book
        if book is None:
            return invalid_bar(ts_sec)
        bids, asks = book.top(self.levels)
        return BookBar(
            ts_sec,
            book.last_update_id,
            sum(qty for _, qty in bids),
            sum(qty for _, qty in asks),
        )

    def _enter(self, second: int) -> list[BookBar]:
        """Move to an event's second; count it if that second was already published."""
        closed = self._advance(second)
        if second != self.open_sec:
            self.late_events += 1
        return closed

    def _advance(self, second: int) -> list[BookBar]:
        open_sec = self.open_sec
        if open_sec is None:
            self.open_sec = second
            return []
        if second <= open_sec:
            return []
        # Nothing changes the book between events: the open second and every empty second
        # up to the new one end with the same book.
        state = self.current_bar(open_sec)
        self.open_sec = second
        return [state._replace(ts_sec=ts) for ts in range(open_sec, second)]


@dataclass(frozen=True)
class BookBars:
    """Consecutive book bars as int64 columns: row ``i`` is second ``start_sec + i``."""

    start_sec: int
    book_update_id: np.ndarray
    bid_depth_e8: np.ndarray
    ask_depth_e8: np.ndarray

    def __len__(self) -> int:
        return len(self.book_update_id)

    @property
    def ts_sec(self) -> np.ndarray:
        return np.arange(self.start_sec, self.start_sec + len(self), dtype=np.int64)

    @property
    def valid(self) -> np.ndarray:
        """True where the second ended with a synced book."""
        return self.book_update_id != NONE

    def row(self, index: int) -> BookBar:
        """Bar ``index`` as the live path's ``BookBar`` (for comparisons)."""
        return BookBar(
            self.start_sec + index,
            int(self.book_update_id[index]),
            int(self.bid_depth_e8[index]),
            int(self.ask_depth_e8[index]),
        )

    def rows(self) -> Iterator[BookBar]:
        return (self.row(index) for index in range(len(self)))

    @staticmethod
    def from_rows(rows: list[BookBar]) -> BookBars:
        """Columns from consecutive live bars (at least one)."""
        if not rows:
            raise ValueError("no bars: use BookBars.invalid(start_sec, 0) for an empty range")
        if any(bar.ts_sec != rows[0].ts_sec + i for i, bar in enumerate(rows)):
            raise ValueError("book bars are not consecutive seconds")

        def column(name: str) -> np.ndarray:
            return np.array([getattr(bar, name) for bar in rows], dtype=np.int64)

        return BookBars(
            start_sec=rows[0].ts_sec,
            book_update_id=column("book_update_id"),
            bid_depth_e8=column("bid_depth_e8"),
            ask_depth_e8=column("ask_depth_e8"),
        )

    @staticmethod
    def invalid(start_sec: int, n: int) -> BookBars:
        """``n`` seconds without a book (trade-only history): every value ``NONE``."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        return BookBars(
            start_sec=start_sec,
            book_update_id=np.full(n, NONE, dtype=np.int64),
            bid_depth_e8=np.full(n, NONE, dtype=np.int64),
            ask_depth_e8=np.full(n, NONE, dtype=np.int64),
        )


def book_bars_from_events(
    events: Iterable[BookEvent | tuple[int, DepthSnapshot]],
    *,
    symbol: str,
    start_sec: int,
    end_sec: int,
    levels: int = BOOK_LEVELS,
    max_buffered_diffs: int = DEFAULT_MAX_BUFFERED_DIFFS,
) -> BookBars:
    """Book bars for exactly the seconds ``start_sec..end_sec`` from stored book events.

    ``events`` are ``DepthDiff``s and ``(received_us, snapshot)`` pairs in arrival order,
    from before ``start_sec`` if the book is to be valid there (events before it build the
    book; their bars are not returned). Seconds before the first event are invalid; seconds
    after the last carry its state.

    The book is inherently sequential (each diff depends on every earlier one), so this
    replays the live :class:`BookBarBuilder`: batch/live parity of book bars holds by
    construction, and the vectorised/incremental parity proof lives in the feature
    arithmetic on top of these columns.
    """
    if end_sec < start_sec:
        return BookBars.invalid(start_sec, 0)
    builder = BookBarBuilder(symbol, levels=levels, max_buffered_diffs=max_buffered_diffs)
    closed: list[BookBar] = []
    for event in events:
        if isinstance(event, DepthDiff):
            if event.event_time_us // US_PER_SECOND > end_sec:
                break
            closed.extend(builder.add_diff(event))
        else:
            received_us, snapshot = event
            if received_us // US_PER_SECOND > end_sec:
                break
            closed.extend(builder.add_snapshot(snapshot, received_us))
    closed.extend(builder.close_through(end_sec))
    kept = [bar for bar in closed if bar.ts_sec >= start_sec]
    first_sec = kept[0].ts_sec if kept else end_sec + 1
    leading = [invalid_bar(ts) for ts in range(start_sec, first_sec)]
    return BookBars.from_rows(leading + kept)
