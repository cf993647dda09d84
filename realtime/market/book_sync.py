"""Binance's order-book synchronisation procedure (SPEC section 3) as a state machine, no I/O.

The caller feeds diffs (``on_diff``) and REST depth snapshots (``on_snapshot``) in the order
it receives them, and reads back what to do: fetch a snapshot while ``needs_snapshot``,
publish a gap when ``on_diff`` returns ``DiffOutcome.GAP`` (details in ``last_gap``), read
the book only while ``state is SyncState.SYNCED``.

How it follows the procedure, and where it is stricter:

* While buffering, the diff chain is itself checked: a diff that skips ids empties the
  buffer (the older diffs could only ever lead a snapshot into the hole) and is recorded as
  a gap; a diff already covered by the chain is stale and ignored. So the buffer is always
  one unbroken chain, and a snapshot that is not too old for its first diff lines up with
  every later one. A hole that a held snapshot already covers is harmless, not a gap.
* A snapshot is too old when ``lastUpdateId + 1 < U`` of the first buffered diff: updates
  ``lastUpdateId + 1 .. U - 1`` would be missing. SPEC step 3 says ``lastUpdateId < U``,
  but step 4 accepts ``U <= lastUpdateId + 1`` and so does the update rule; ``U - 1`` is an
  exact fit, and rejecting it would cost another 250-weight request for nothing.
* A snapshot that arrives before any diff (the REST reply can beat the first 20 ms diff)
  is held, not refused: the first diff that is not covered by it decides whether it fits.
* The buffer is bounded; when full, the oldest diff is dropped. The chain stays unbroken;
  a snapshot older than the new first diff is then refused as too old, as it must be.
"""

from __future__ import annotations

from collections import deque
from enum import Enum
from typing import NamedTuple

from realtime.market.events import BestBidAsk, DepthDiff, DepthSnapshot
from realtime.market.order_book import BookOutOfSync, OrderBook

__all__ = [
    "BookGap",
    "BookSynchroniser",
    "CrossCheck",
    "DiffOutcome",
    "SnapshotOutcome",
    "SyncState",
]

DEFAULT_MAX_BUFFERED_DIFFS = 4096
"""About 80 s of the 20 ms SBE diff stream: room for a slow or rate-limited snapshot."""


class SyncState(Enum):
    """Whether the synchroniser holds a live book."""

    BUFFERING = "buffering"
    """No valid book: diffs are buffered until a snapshot anchors them."""
    SYNCED = "synced"
    """The book is anchored and every diff since has been applied."""


class DiffOutcome(Enum):
    """What ``on_diff`` did with one diff."""

    BUFFERED = "buffered"
    """Kept until a snapshot anchors the book."""
    APPLIED = "applied"
    """Applied to the live book (possibly completing a sync with a held snapshot)."""
    STALE = "stale"
    """Already covered by the book, the snapshot or an earlier diff; ignored."""
    GAP = "gap"
    """Update ids were skipped (see ``last_gap``): any book was dropped; fetch a snapshot."""
    CROSS_CHECK_FAILED = "cross_check_failed"
    """Applied, then the book disagreed with a held cross-check at this id: resynchronising."""


class SnapshotOutcome(Enum):
    """What ``on_snapshot`` did with one REST depth snapshot."""

    SYNCED = "synced"
    """The snapshot anchored the book; buffered diffs after it are applied: live."""
    PENDING = "pending"
    """No diff to judge it by yet: held until the first diff it does not cover arrives."""
    TOO_OLD = "too_old"
    """Updates between the snapshot and the first buffered diff are unknown: fetch again."""
    IGNORED = "ignored"
    """Already synced; the snapshot is not needed."""


class CrossCheck(Enum):
    """Result of comparing the book with an exchange top-of-book picture."""

    MATCHED = "matched"
    MISMATCHED = "mismatched"
    """The book disagreed at the same update id: it was dropped; a snapshot is needed."""
    HELD = "held"
    """Later than the book: compared when the book reaches exactly that update id."""
    SKIPPED = "skipped"
    """Not comparable: no book, or the book is already past that update id."""


class BookGap(NamedTuple):
    """Update ids ``expected_first_id .. got_first_id - 1`` never arrived."""

    expected_first_id: int
    got_first_id: int

    @property
    def missing_ids(self) -> int:
        """How many update ids were skipped."""
        return self.got_first_id - self.expected_first_id


class BookSynchroniser:
    """Keeps one symbol's book in sync from diffs and snapshots; see the module docstring.

    Counters (monotonic, for metrics): ``gap_count``, ``missed_update_ids``, ``stale_count``
    (diffs an earlier diff already covered: duplicates, late arrivals), ``covered_by_snapshot``
    (diffs a snapshot made redundant: the normal step 4 drop), ``snapshots_rejected``,
    ``buffer_overflow_count``, ``cross_check_mismatches``, ``reset_count``.
    """

    def __init__(
        self, symbol: str, *, max_buffered_diffs: int = DEFAULT_MAX_BUFFERED_DIFFS
    ) -> None:
        if max_buffered_diffs < 1:
            raise ValueError(f"max_buffered_diffs must be >= 1, got {max_buffered_diffs}")
        self.symbol = symbol
        self.max_buffered_diffs = max_buffered_diffs
        self._book: OrderBook | None = None
        self._buffer: deque[DepthDiff] = deque()
        self._held_snapshot: DepthSnapshot | None = None
        # Last update id of the newest diff received (None: no chain yet, as after start or
        # a reconnect). Gaps are judged against the book while there is one, else this.
        self._chain_last_id: int | None = None
        self._held_best_bid_ask: BestBidAsk | None = None
        self._held_depth20: DepthSnapshot | None = None
        self.last_gap: BookGap | None = None
        self.last_reset_reason: str | None = None
        self.gap_count = 0
        self.missed_update_ids = 0
        self.stale_count = 0
        self.covered_by_snapshot = 0
        self.snapshots_rejected = 0
        self.buffer_overflow_count = 0
        self.cross_check_mismatches = 0
        self.reset_count = 0

    @property
    def state(self) -> SyncState:
        """SYNCED while a valid book is held, else BUFFERING."""
        return SyncState.BUFFERING if self._book is None else SyncState.SYNCED

    @property
    def book(self) -> OrderBook | None:
        """The live book while synced, else None. Read it; never modify it."""
        return self._book

    @property
    def needs_snapshot(self) -> bool:
        """True when the caller should fetch a REST depth snapshot (none held, no book)."""
        return self._book is None and self._held_snapshot is None

    @property
    def buffered_count(self) -> int:
        """Number of diffs waiting for a snapshot."""
        return len(self._buffer)

    @property
    def first_buffered_id(self) -> int | None:
        """``U`` of the first buffered diff: a snapshot must reach at least ``U - 1``."""
        return self._buffer[0].first_update_id if self._buffer else None

    def reset(self, reason: str) -> None:
        """Drop the book and everything buffered: after a reconnect or a decode error.

        The diff chain restarts too: the next diff is not checked against earlier ones.
        """
        self._drop_book(reason)
        self._buffer.clear()
        self._held_snapshot = None
        self._chain_last_id = None

    def on_diff(self, diff: DepthDiff) -> DiffOutcome:
        """Take one diff from the stream, in arrival order; see :class:`DiffOutcome`."""
        if diff.symbol != self.symbol:
            raise ValueError(f"diff for {diff.symbol!r} fed to the {self.symbol!r} book")
        book = self._book
        if book is None:
            return self._on_diff_without_book(diff)
        try:
            applied = book.update(diff)
        except BookOutOfSync as gap:
            self._record_gap(gap.expected_first_id, gap.got_first_id)
            self._drop_book(None)
            self._append_to_buffer(diff)
            return DiffOutcome.GAP
        chain_last_id = self._chain_last_id
        if not applied:
            if chain_last_id is not None and diff.last_update_id <= chain_last_id:
                self.stale_count += 1
            else:
                self.covered_by_snapshot += 1
                self._chain_last_id = diff.last_update_id
            return DiffOutcome.STALE
        self._chain_last_id = diff.last_update_id
        if (self._held_best_bid_ask is not None or self._held_depth20 is not None) and (
            self._run_held_cross_checks(book) is CrossCheck.MISMATCHED
        ):
            return DiffOutcome.CROSS_CHECK_FAILED
        return DiffOutcome.APPLIED

    def on_snapshot(self, snapshot: DepthSnapshot) -> SnapshotOutcome:
        """Take one full REST depth snapshot; see :class:`SnapshotOutcome`.

        ``@depth20`` pictures cannot seed a book: use :meth:`cross_check_depth20` for them.
        """
        if snapshot.symbol != self.symbol:
            raise ValueError(f"snapshot for {snapshot.symbol!r} fed to the {self.symbol!r} book")
        if self._book is not None:
            return SnapshotOutcome.IGNORED
        snapshot_id = snapshot.last_update_id
        buffer = self._buffer
        if not buffer:
            # The next diff will start at chain id + 1 (if there is a chain): a snapshot
            # before the chain id cannot reach it.
            if self._chain_last_id is not None and snapshot_id < self._chain_last_id:
                self.snapshots_rejected += 1
                return SnapshotOutcome.TOO_OLD
            held = self._held_snapshot
            if held is None or snapshot_id > held.last_update_id:
                self._held_snapshot = snapshot
            return SnapshotOutcome.PENDING
        if snapshot_id + 1 < buffer[0].first_update_id:
            self.snapshots_rejected += 1
            return SnapshotOutcome.TOO_OLD
        while buffer and buffer[0].last_update_id <= snapshot_id:
            buffer.popleft()
            self.covered_by_snapshot += 1
        book = OrderBook.from_snapshot(snapshot)
        # The buffer is one unbroken chain whose first diff reaches back to the snapshot,
        # so the update rule accepts every diff left in it.
        for diff in buffer:
            book.update(diff)
        buffer.clear()
        self._held_snapshot = None
        self._book = book
        return SnapshotOutcome.SYNCED

    def cross_check_best_bid_ask(self, best_bid_ask: BestBidAsk) -> CrossCheck:
        """Compare the book's top with a ``@bestBidAsk`` event; resync on a mismatch.

        Only an exact update-id match is comparable; an event ahead of the book is held
        (the latest one only) until the book reaches its id. ``@bestBidAsk`` ids jump under
        auto-culling, so many events are never compared: that is expected.
        """
        if best_bid_ask.symbol != self.symbol:
            raise ValueError(f"bestBidAsk for {best_bid_ask.symbol!r} fed to {self.symbol!r}")
        book = self._book
        if book is None or best_bid_ask.book_update_id < book.last_update_id:
            return CrossCheck.SKIPPED
        if best_bid_ask.book_update_id > book.last_update_id:
            self._held_best_bid_ask = best_bid_ask
            return CrossCheck.HELD
        return self._compare_best_bid_ask(book, best_bid_ask)

    def cross_check_depth20(self, depth20: DepthSnapshot) -> CrossCheck:
        """Compare the book's top levels with a ``@depth20`` picture; resync on a mismatch.

        Same id rule as :meth:`cross_check_best_bid_ask`. Compares as many levels a side as
        the picture carries.
        """
        if depth20.symbol != self.symbol:
            raise ValueError(f"depth20 for {depth20.symbol!r} fed to {self.symbol!r}")
        book = self._book
        if book is None or depth20.last_update_id < book.last_update_id:
            return CrossCheck.SKIPPED
        if depth20.last_update_id > book.last_update_id:
            self._held_depth20 = depth20
            return CrossCheck.HELD
        return self._compare_depth20(book, depth20)

    def _on_diff_without_book(self, diff: DepthDiff) -> DiffOutcome:
        chain_last_id = self._chain_last_id
        if chain_last_id is not None and diff.last_update_id <= chain_last_id:
            self.stale_count += 1
            return DiffOutcome.STALE
        held = self._held_snapshot
        if held is not None:
            # The buffer is empty while a snapshot is held (and the chain, if any, does not
            # reach past it): this diff decides whether the snapshot fits.
            snapshot_id = held.last_update_id
            self._chain_last_id = diff.last_update_id
            if diff.last_update_id <= snapshot_id:
                self.covered_by_snapshot += 1
                return DiffOutcome.STALE
            if diff.first_update_id <= snapshot_id + 1:
                book = OrderBook.from_snapshot(held)
                book.apply(diff)
                self._held_snapshot = None
                self._book = book
                return DiffOutcome.APPLIED
            self._held_snapshot = None
            self.snapshots_rejected += 1
        outcome = DiffOutcome.BUFFERED
        if chain_last_id is not None and diff.first_update_id > chain_last_id + 1:
            # Older buffered diffs could only lead a snapshot into the hole.
            self._record_gap(chain_last_id + 1, diff.first_update_id)
            self._buffer.clear()
            outcome = DiffOutcome.GAP
        self._append_to_buffer(diff)
        return outcome

    def _append_to_buffer(self, diff: DepthDiff) -> None:
        buffer = self._buffer
        if len(buffer) >= self.max_buffered_diffs:
            buffer.popleft()
            self.buffer_overflow_count += 1
        buffer.append(diff)
        self._chain_last_id = diff.last_update_id

    def _record_gap(self, expected_first_id: int, got_first_id: int) -> None:
        self.last_gap = BookGap(expected_first_id, got_first_id)
        self.gap_count += 1
        self.missed_update_ids += got_first_id - expected_first_id

    def _drop_book(self, reason: str | None) -> None:
        """Leave SYNCED; the diff chain goes on, so the next diff is still checked."""
        self._book = None
        self._held_best_bid_ask = None
        self._held_depth20 = None
        if reason is not None:
            self.last_reset_reason = reason
            self.reset_count += 1

    def _run_held_cross_checks(self, book: OrderBook) -> CrossCheck:
        book_id = book.last_update_id
        held_bba = self._held_best_bid_ask
        if held_bba is not None and held_bba.book_update_id <= book_id:
            self._held_best_bid_ask = None
            if (
                held_bba.book_update_id == book_id
                and self._compare_best_bid_ask(book, held_bba) is CrossCheck.MISMATCHED
            ):
                return CrossCheck.MISMATCHED
        held_depth = self._held_depth20
        if held_depth is not None and held_depth.last_update_id <= book_id:
            self._held_depth20 = None
            if held_depth.last_update_id == book_id:
                return self._compare_depth20(book, held_depth)
        return CrossCheck.MATCHED

    def _compare_best_bid_ask(self, book: OrderBook, best_bid_ask: BestBidAsk) -> CrossCheck:
        # An empty side is published as price 0, quantity 0.
        book_bid = book.best_bid() or (0, 0)
        book_ask = book.best_ask() or (0, 0)
        exchange_bid = (best_bid_ask.bid_price_e8, best_bid_ask.bid_qty_e8)
        exchange_ask = (best_bid_ask.ask_price_e8, best_bid_ask.ask_qty_e8)
        if book_bid == exchange_bid and book_ask == exchange_ask:
            return CrossCheck.MATCHED
        self.cross_check_mismatches += 1
        self._drop_book(
            f"bestBidAsk mismatch at update id {best_bid_ask.book_update_id}: book "
            f"{book_bid}/{book_ask}, exchange {exchange_bid}/{exchange_ask}"
        )
        return CrossCheck.MISMATCHED

    def _compare_depth20(self, book: OrderBook, depth20: DepthSnapshot) -> CrossCheck:
        bids, _ = book.top(len(depth20.bids))
        _, asks = book.top(len(depth20.asks))
        if bids == tuple(depth20.bids) and asks == tuple(depth20.asks):
            return CrossCheck.MATCHED
        self.cross_check_mismatches += 1
        self._drop_book(f"depth20 mismatch at update id {depth20.last_update_id}")
        return CrossCheck.MISMATCHED
