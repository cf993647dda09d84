"""Binance's book synchronisation procedure against a model exchange.

The model exchange applies one level change per update id; diffs net runs of consecutive
updates (absolute quantities, as Binance sends them), and a snapshot can be taken at any
update id, including one inside a diff's ``[U, u]`` range.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from realtime.market.book_sync import (
    BookGap,
    BookSynchroniser,
    CrossCheck,
    DiffOutcome,
    SnapshotOutcome,
    SyncState,
)
from realtime.market.events import BestBidAsk, DepthDiff, DepthSnapshot

SYMBOL = "BTCUSDT"
TICK = 1_000_000
MID = 98_000_00000000


def diff(first: int, last: int, bids=(), asks=()) -> DepthDiff:
    return DepthDiff(SYMBOL, 0, first, last, tuple(bids), tuple(asks))


def snapshot(last_update_id: int, bids=(), asks=()) -> DepthSnapshot:
    return DepthSnapshot(SYMBOL, None, last_update_id, tuple(bids), tuple(asks))


@dataclass(frozen=True)
class History:
    """What the exchange did: the book after every update id, and the diffs it published."""

    start_id: int
    books: list[tuple[dict[int, int], dict[int, int]]]  # index i: the book at start_id + i
    diffs: list[DepthDiff]

    @property
    def final_id(self) -> int:
        return self.start_id + len(self.books) - 1

    def snapshot_at(self, update_id: int) -> DepthSnapshot:
        bids, asks = self.books[update_id - self.start_id]
        return snapshot(update_id, sorted(bids.items(), reverse=True), sorted(asks.items()))


@st.composite
def histories(draw, min_diffs: int = 1) -> History:
    start_id = draw(st.integers(min_value=1, max_value=8 * 10**10))
    offsets = st.integers(min_value=0, max_value=9)
    quantities = st.one_of(st.just(0), st.integers(min_value=1, max_value=10**10))
    initial_bids = draw(st.dictionaries(offsets, st.integers(1, 10**10), max_size=10))
    initial_asks = draw(st.dictionaries(offsets, st.integers(1, 10**10), max_size=10))
    bids = {MID - (1 + offset) * TICK: qty for offset, qty in initial_bids.items()}
    asks = {MID + offset * TICK: qty for offset, qty in initial_asks.items()}
    books = [(dict(bids), dict(asks))]
    sizes = draw(st.lists(st.integers(min_value=1, max_value=5), min_size=min_diffs, max_size=12))
    diffs = []
    for size in sizes:
        first_id = start_id + len(books)
        netted: tuple[dict[int, int], dict[int, int]] = ({}, {})
        for _ in range(size):
            is_bid = draw(st.booleans())
            offset = draw(offsets)
            qty = draw(quantities)
            price = MID - (1 + offset) * TICK if is_bid else MID + offset * TICK
            side = bids if is_bid else asks
            if qty:
                side[price] = qty
            else:
                side.pop(price, None)
            netted[0 if is_bid else 1][price] = qty
            books.append((dict(bids), dict(asks)))
        last_id = start_id + len(books) - 1
        diffs.append(diff(first_id, last_id, netted[0].items(), netted[1].items()))
    return History(start_id, books, diffs)


def feed(sync: BookSynchroniser, event: DepthDiff | DepthSnapshot):
    if isinstance(event, DepthDiff):
        return sync.on_diff(event)
    return sync.on_snapshot(event)


def resync_at_the_end(sync: BookSynchroniser, history: History) -> None:
    """What the caller does when told to: fetch a fresh snapshot."""
    if sync.needs_snapshot:
        assert sync.on_snapshot(history.snapshot_at(history.final_id)) is SnapshotOutcome.SYNCED


def assert_book_is_the_exchange_book(sync: BookSynchroniser, history: History) -> None:
    assert sync.state is SyncState.SYNCED
    assert sync.book is not None
    assert sync.book.last_update_id == history.final_id
    assert sync.book.snapshot() == history.snapshot_at(history.final_id)


@st.composite
def sessions(draw, min_diffs: int = 1):
    """A history, where the subscription starts, and a snapshot id and arrival position."""
    history = draw(histories(min_diffs=min_diffs))
    first = draw(st.integers(min_value=0, max_value=len(history.diffs) - min_diffs))
    # Any id but the last: a snapshot at the final id, fetched before every diff, stays
    # held for the diff that would follow (tested on its own below).
    snapshot_id = draw(st.integers(min_value=history.start_id, max_value=history.final_id - 1))
    return history, first, snapshot_id


@given(sessions(), st.data())
def test_synchroniser_ends_with_the_exchange_book(session, data):
    history, first, snapshot_id = session
    stream = history.diffs[first:]
    position = data.draw(st.integers(min_value=0, max_value=len(stream)))
    events = [*stream[:position], history.snapshot_at(snapshot_id), *stream[position:]]
    sync = BookSynchroniser(SYMBOL)
    assert sync.needs_snapshot
    outcomes = [feed(sync, event) for event in events]
    assert DiffOutcome.GAP not in outcomes
    too_old = snapshot_id + 1 < stream[0].first_update_id
    assert sync.snapshots_rejected == int(too_old)
    if not too_old:
        assert sync.state is SyncState.SYNCED
    resync_at_the_end(sync, history)
    assert_book_is_the_exchange_book(sync, history)
    assert (sync.gap_count, sync.stale_count, sync.buffered_count) == (0, 0, 0)


@given(sessions(min_diffs=3), st.data())
def test_a_dropped_diff_is_a_gap_naming_the_missing_ids(session, data):
    history, first, snapshot_id = session
    stream = history.diffs[first:]
    dropped = data.draw(st.integers(min_value=1, max_value=len(stream) - 2))
    delivered = stream[:dropped] + stream[dropped + 1 :]
    position = data.draw(st.integers(min_value=0, max_value=len(delivered)))
    events = [*delivered[:position], history.snapshot_at(snapshot_id), *delivered[position:]]
    sync = BookSynchroniser(SYMBOL)
    for event in events:
        feed(sync, event)
    lost, after = stream[dropped], stream[dropped + 1]
    # Harmless only if the snapshot, in hand before the diff after the hole, covers it.
    covered = snapshot_id >= lost.last_update_id and position <= dropped
    if covered:
        assert sync.gap_count == 0
    else:
        assert sync.gap_count == 1
        gap = sync.last_gap
        assert gap.got_first_id == after.first_update_id
        assert gap.expected_first_id in (lost.first_update_id, snapshot_id + 1)
        assert lost.first_update_id <= gap.expected_first_id <= lost.last_update_id
        assert sync.missed_update_ids == gap.missing_ids
    resync_at_the_end(sync, history)
    assert_book_is_the_exchange_book(sync, history)


@given(sessions(min_diffs=3), st.data())
def test_two_diffs_out_of_order_are_detected(session, data):
    history, first, snapshot_id = session
    stream = history.diffs[first:]
    swapped = data.draw(st.integers(min_value=1, max_value=len(stream) - 2))
    delivered = list(stream)
    delivered[swapped], delivered[swapped + 1] = delivered[swapped + 1], delivered[swapped]
    position = data.draw(st.integers(min_value=0, max_value=len(delivered)))
    events = [*delivered[:position], history.snapshot_at(snapshot_id), *delivered[position:]]
    sync = BookSynchroniser(SYMBOL)
    outcomes = {}
    for event in events:
        outcomes[event] = feed(sync, event)
    early, late = stream[swapped + 1], stream[swapped]
    assert outcomes[late] is DiffOutcome.STALE  # it arrives after a diff that passed it
    covered = snapshot_id >= late.last_update_id and position <= swapped
    if not covered:
        assert outcomes[early] is DiffOutcome.GAP
        assert sync.last_gap.got_first_id == early.first_update_id
        assert sync.gap_count == 1
    resync_at_the_end(sync, history)
    assert_book_is_the_exchange_book(sync, history)


@given(sessions(), st.data())
def test_duplicated_diffs_are_ignored(session, data):
    history, first, snapshot_id = session
    stream = history.diffs[first:]
    duplicates = data.draw(st.lists(st.integers(0, len(stream) - 1), min_size=1, max_size=5))
    events: list[DepthDiff | DepthSnapshot] = list(stream)
    for index in duplicates:
        # Anywhere after the original, as after a reconnect overlap or a bus redelivery.
        original_at = events.index(stream[index])
        at = data.draw(st.integers(min_value=original_at + 1, max_value=len(events)))
        events.insert(at, stream[index])
    position = data.draw(st.integers(min_value=0, max_value=len(events)))
    events.insert(position, history.snapshot_at(snapshot_id))
    sync = BookSynchroniser(SYMBOL)
    for event in events:
        feed(sync, event)
    assert sync.gap_count == 0
    assert sync.stale_count == len(duplicates)
    resync_at_the_end(sync, history)
    assert_book_is_the_exchange_book(sync, history)


@given(histories(min_diffs=2), st.data())
def test_a_snapshot_older_than_the_first_buffered_diff_is_refused(history, data):
    first = data.draw(st.integers(min_value=1, max_value=len(history.diffs) - 1))
    stream = history.diffs[first:]
    first_id = stream[0].first_update_id
    buffered = data.draw(st.integers(min_value=1, max_value=len(stream)))
    sync = BookSynchroniser(SYMBOL)
    for event in stream[:buffered]:
        assert sync.on_diff(event) is DiffOutcome.BUFFERED
    assert sync.first_buffered_id == first_id
    old_id = data.draw(st.integers(min_value=history.start_id, max_value=first_id - 2))
    assert sync.on_snapshot(history.snapshot_at(old_id)) is SnapshotOutcome.TOO_OLD
    assert sync.needs_snapshot
    assert sync.state is SyncState.BUFFERING
    assert sync.buffered_count == buffered  # the buffer is kept for the next snapshot
    # The snapshot just before the first buffered diff fits exactly.
    assert sync.on_snapshot(history.snapshot_at(first_id - 1)) is SnapshotOutcome.SYNCED
    for event in stream[buffered:]:
        assert sync.on_diff(event) is DiffOutcome.APPLIED
    assert_book_is_the_exchange_book(sync, history)
    assert sync.snapshots_rejected == 1


def synced(last_update_id: int = 100) -> BookSynchroniser:
    sync = BookSynchroniser(SYMBOL)
    sync.on_diff(diff(last_update_id - 5, last_update_id))
    outcome = sync.on_snapshot(
        snapshot(last_update_id, bids=[(MID - TICK, 5)], asks=[(MID, 7), (MID + TICK, 8)])
    )
    assert outcome is SnapshotOutcome.SYNCED
    return sync


def test_procedure_step_by_step():
    sync = BookSynchroniser(SYMBOL)
    assert (sync.state, sync.book, sync.needs_snapshot) == (SyncState.BUFFERING, None, True)
    assert sync.on_diff(diff(101, 105, bids=[(MID - TICK, 1)])) is DiffOutcome.BUFFERED
    assert sync.on_diff(diff(106, 110, bids=[(MID - TICK, 2)])) is DiffOutcome.BUFFERED
    assert sync.on_diff(diff(111, 120, asks=[(MID, 3)])) is DiffOutcome.BUFFERED
    assert (sync.buffered_count, sync.first_buffered_id) == (3, 101)
    assert sync.on_snapshot(snapshot(99)) is SnapshotOutcome.TOO_OLD
    # 107 lies inside the second diff: the first is dropped, the second and third applied.
    assert sync.on_snapshot(snapshot(107, bids=[(MID - 2 * TICK, 9)])) is SnapshotOutcome.SYNCED
    assert (sync.state, sync.needs_snapshot, sync.buffered_count) == (SyncState.SYNCED, False, 0)
    assert sync.book.last_update_id == 120
    assert sync.book.top(5) == (((MID - TICK, 2), (MID - 2 * TICK, 9)), ((MID, 3),))
    assert sync.on_diff(diff(121, 125, asks=[(MID, 0)])) is DiffOutcome.APPLIED
    assert sync.on_diff(diff(121, 125, asks=[(MID, 0)])) is DiffOutcome.STALE
    assert sync.on_snapshot(snapshot(125)) is SnapshotOutcome.IGNORED
    assert sync.book.best_ask() is None
    assert (sync.stale_count, sync.covered_by_snapshot) == (1, 1)


def test_a_gap_drops_the_book_and_buffers_from_the_diff_after_it():
    sync = synced(100)
    book = sync.book
    assert sync.on_diff(diff(101, 103)) is DiffOutcome.APPLIED
    assert sync.on_diff(diff(110, 115, bids=[(MID - TICK, 1)])) is DiffOutcome.GAP
    assert sync.last_gap == BookGap(104, 110)
    assert (sync.gap_count, sync.missed_update_ids, sync.last_gap.missing_ids) == (1, 6, 6)
    assert (sync.state, sync.book, sync.needs_snapshot) == (SyncState.BUFFERING, None, True)
    assert book.last_update_id == 103  # the dropped book was not touched by the gap diff
    assert sync.first_buffered_id == 110
    # The chain goes on being checked while buffering.
    assert sync.on_diff(diff(112, 115)) is DiffOutcome.STALE
    assert sync.on_diff(diff(120, 121)) is DiffOutcome.GAP
    assert sync.last_gap == BookGap(116, 120)
    assert (sync.gap_count, sync.missed_update_ids, sync.first_buffered_id) == (2, 10, 120)
    assert sync.on_snapshot(snapshot(119, asks=[(MID, 1)])) is SnapshotOutcome.SYNCED
    assert sync.book.last_update_id == 121


def test_a_snapshot_before_any_diff_is_held_until_a_diff_shows_it_fits():
    sync = BookSynchroniser(SYMBOL)
    assert sync.on_snapshot(snapshot(100, bids=[(MID - TICK, 1)])) is SnapshotOutcome.PENDING
    assert (sync.needs_snapshot, sync.state) == (False, SyncState.BUFFERING)
    assert sync.on_snapshot(snapshot(98)) is SnapshotOutcome.PENDING  # older: the newer stays
    assert sync.on_diff(diff(95, 100)) is DiffOutcome.STALE  # covered by the snapshot
    # The normal step 4 drop, not a duplicate.
    assert (sync.stale_count, sync.covered_by_snapshot) == (0, 1)
    assert sync.on_diff(diff(101, 104, asks=[(MID, 2)])) is DiffOutcome.APPLIED
    assert sync.state is SyncState.SYNCED
    assert sync.book.top(5) == (((MID - TICK, 1),), ((MID, 2),))


def test_a_held_snapshot_that_does_not_reach_the_first_diff_is_refused():
    sync = BookSynchroniser(SYMBOL)
    assert sync.on_snapshot(snapshot(100)) is SnapshotOutcome.PENDING
    assert sync.on_diff(diff(102, 104)) is DiffOutcome.BUFFERED
    assert (sync.needs_snapshot, sync.snapshots_rejected, sync.gap_count) == (True, 1, 0)
    assert sync.first_buffered_id == 102


def test_a_held_snapshot_is_refused_with_a_gap_when_the_chain_skips_past_it():
    sync = synced(100)
    sync.reset("decode error")
    assert sync.on_snapshot(snapshot(100)) is SnapshotOutcome.PENDING
    assert sync.on_diff(diff(98, 100)) is DiffOutcome.STALE
    assert sync.on_diff(diff(105, 106)) is DiffOutcome.GAP
    assert sync.last_gap == BookGap(101, 105)
    assert sync.needs_snapshot


def test_a_hole_bridged_by_a_held_snapshot_is_not_a_gap():
    sync = BookSynchroniser(SYMBOL)
    assert sync.on_snapshot(snapshot(110)) is SnapshotOutcome.PENDING
    assert sync.on_diff(diff(95, 100)) is DiffOutcome.STALE
    assert sync.on_diff(diff(105, 112)) is DiffOutcome.APPLIED  # 101..104 are in the snapshot
    assert (sync.gap_count, sync.state) == (0, SyncState.SYNCED)


def test_a_snapshot_covering_every_diff_seen_stays_held():
    sync = BookSynchroniser(SYMBOL)
    assert sync.on_snapshot(snapshot(120)) is SnapshotOutcome.PENDING
    assert sync.on_diff(diff(101, 120)) is DiffOutcome.STALE
    assert (sync.state, sync.needs_snapshot) == (SyncState.BUFFERING, False)
    assert sync.on_diff(diff(121, 121)) is DiffOutcome.APPLIED


def test_a_snapshot_newer_than_every_buffered_diff_syncs_at_its_own_id():
    sync = BookSynchroniser(SYMBOL)
    sync.on_diff(diff(101, 105))
    assert sync.on_snapshot(snapshot(130)) is SnapshotOutcome.SYNCED
    assert sync.book.last_update_id == 130
    assert sync.on_diff(diff(106, 130)) is DiffOutcome.STALE
    assert (sync.stale_count, sync.covered_by_snapshot) == (0, 2)  # 101..105 and 106..130
    assert sync.on_diff(diff(125, 135)) is DiffOutcome.APPLIED
    assert sync.on_diff(diff(137, 140)) is DiffOutcome.GAP


def test_the_buffer_is_bounded_and_drops_its_oldest_diffs():
    sync = BookSynchroniser(SYMBOL, max_buffered_diffs=3)
    for first_id in range(101, 111, 2):
        assert sync.on_diff(diff(first_id, first_id + 1)) is DiffOutcome.BUFFERED
    assert (sync.buffered_count, sync.buffer_overflow_count) == (3, 2)
    assert sync.first_buffered_id == 105
    assert sync.on_snapshot(snapshot(102)) is SnapshotOutcome.TOO_OLD
    assert sync.on_snapshot(snapshot(104)) is SnapshotOutcome.SYNCED
    assert sync.book.last_update_id == 110


def test_the_buffer_needs_room_for_at_least_one_diff():
    with pytest.raises(ValueError, match="max_buffered_diffs"):
        BookSynchroniser(SYMBOL, max_buffered_diffs=0)


def test_reset_drops_everything_and_restarts_the_chain():
    sync = synced(100)
    sync.reset("reconnect")
    assert (sync.state, sync.book, sync.needs_snapshot) == (SyncState.BUFFERING, None, True)
    assert (sync.reset_count, sync.last_reset_reason) == (1, "reconnect")
    # A new connection's diffs are not checked against the old one's.
    assert sync.on_diff(diff(90, 95)) is DiffOutcome.BUFFERED
    assert sync.gap_count == 0


def test_other_symbols_are_refused():
    sync = BookSynchroniser(SYMBOL)
    with pytest.raises(ValueError, match="ETHUSDT"):
        sync.on_diff(DepthDiff("ETHUSDT", 0, 1, 2, (), ()))
    with pytest.raises(ValueError, match="ETHUSDT"):
        sync.on_snapshot(DepthSnapshot("ETHUSDT", None, 1, (), ()))


def bba(update_id: int, bid=(MID - TICK, 5), ask=(MID, 7)) -> BestBidAsk:
    return BestBidAsk(SYMBOL, 0, update_id, bid[0], bid[1], ask[0], ask[1])


def test_best_bid_ask_cross_check():
    sync = synced(100)
    assert sync.cross_check_best_bid_ask(bba(100)) is CrossCheck.MATCHED
    assert sync.cross_check_best_bid_ask(bba(99, bid=(1, 1))) is CrossCheck.SKIPPED
    assert sync.cross_check_best_bid_ask(bba(103, ask=(MID, 6))) is CrossCheck.HELD
    assert sync.on_diff(diff(101, 102, asks=[(MID, 6)])) is DiffOutcome.APPLIED
    assert sync.on_diff(diff(103, 103)) is DiffOutcome.APPLIED  # reached 103: matched
    assert sync.cross_check_mismatches == 0
    assert sync.cross_check_best_bid_ask(bba(103, ask=(MID, 1))) is CrossCheck.MISMATCHED
    assert (sync.state, sync.needs_snapshot, sync.cross_check_mismatches) == (
        SyncState.BUFFERING,
        True,
        1,
    )
    assert "bestBidAsk mismatch at update id 103" in sync.last_reset_reason
    assert sync.cross_check_best_bid_ask(bba(103)) is CrossCheck.SKIPPED
    # The diff chain is intact: the next diff is buffered, an older snapshot is refused.
    assert sync.on_snapshot(snapshot(102)) is SnapshotOutcome.TOO_OLD
    assert sync.on_diff(diff(104, 105)) is DiffOutcome.BUFFERED


def test_a_held_best_bid_ask_that_disagrees_fails_the_diff_that_reaches_it():
    sync = synced(100)
    assert sync.cross_check_best_bid_ask(bba(102, bid=(MID - TICK, 4))) is CrossCheck.HELD
    assert sync.on_diff(diff(101, 102)) is DiffOutcome.CROSS_CHECK_FAILED
    assert sync.needs_snapshot


def test_a_held_best_bid_ask_that_a_diff_jumps_over_is_never_compared():
    sync = synced(100)
    assert sync.cross_check_best_bid_ask(bba(102, bid=(1, 1))) is CrossCheck.HELD
    assert sync.on_diff(diff(101, 105)) is DiffOutcome.APPLIED
    assert sync.on_diff(diff(106, 106)) is DiffOutcome.APPLIED
    assert sync.cross_check_mismatches == 0


def test_an_empty_side_matches_a_zero_best_bid_ask():
    sync = synced(100)
    sync.on_diff(diff(101, 101, bids=[(MID - TICK, 0)]))
    assert sync.cross_check_best_bid_ask(bba(101, bid=(0, 0))) is CrossCheck.MATCHED


def test_depth20_cross_check():
    sync = synced(100)
    top = sync.book.snapshot(20)
    assert sync.cross_check_depth20(top) is CrossCheck.MATCHED
    held = snapshot(102, bids=[(MID - TICK, 5)], asks=[(MID + TICK, 8)])
    assert sync.cross_check_depth20(held) is CrossCheck.HELD
    assert sync.on_diff(diff(101, 102, asks=[(MID, 0)])) is DiffOutcome.APPLIED
    wrong = snapshot(102, bids=[(MID - TICK, 5), (MID - 2 * TICK, 1)], asks=[(MID + TICK, 8)])
    assert sync.cross_check_depth20(wrong) is CrossCheck.MISMATCHED
    assert sync.needs_snapshot
    assert sync.cross_check_mismatches == 1
