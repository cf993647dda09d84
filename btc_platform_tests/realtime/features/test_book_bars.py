"""Book bars: the depth book at the end of each second, checked against a naive book."""

from __future__ import annotations

import heapq
from bisect import bisect_left
from collections.abc import Iterable
from functools import cache

import pytest

from realtime.features.bars import NONE
from realtime.features.book_bars import (
    BOOK_LEVELS,
    BookBar,
    BookBarBuilder,
    BookBars,
    ReceivedSnapshot,
    book_bars_from_events,
)
from realtime.market.book_sync import SyncState
from realtime.market.events import BestBidAsk, DepthDiff, DepthSnapshot
from realtime.sim.market_model import MarketModel, MarketParams
from realtime.sim.source import SourceEvent

SYMBOL = "BTCUSDT"
START_US = 1_767_225_600_000_000
START_SEC = START_US // 1_000_000
SECONDS = 180
END_SEC = START_SEC + SECONDS - 1
E8 = 10**8


@cache
def market() -> tuple[DepthSnapshot, tuple[SourceEvent, ...]]:
    """A few generated minutes: the initial book and every event, in event time order."""
    model = MarketModel(MarketParams(seed=11, start_time_us=START_US))
    events = tuple(event for _ in range(SECONDS) for event in model.next_events())
    return model.initial_book(), events


def diffs_of(events: Iterable[SourceEvent]) -> list[DepthDiff]:
    return [event for event in events if isinstance(event, DepthDiff)]


class NaiveBook:
    """Dicts of price -> qty; top levels by sorting: independent of ``OrderBook``."""

    def __init__(self, snapshot: DepthSnapshot) -> None:
        self.bids = {price: qty for price, qty in snapshot.bids if qty}
        self.asks = {price: qty for price, qty in snapshot.asks if qty}
        self.last_update_id = snapshot.last_update_id

    def apply(self, diff: DepthDiff) -> None:
        for side, levels in ((self.bids, diff.bids), (self.asks, diff.asks)):
            for price, qty in levels:
                if qty:
                    side[price] = qty
                else:
                    side.pop(price, None)
        self.last_update_id = diff.last_update_id

    def bar(self, ts_sec: int) -> BookBar:
        best_bids = heapq.nlargest(BOOK_LEVELS, self.bids)
        best_asks = heapq.nsmallest(BOOK_LEVELS, self.asks)
        return BookBar(
            ts_sec,
            self.last_update_id,
            sum(self.bids[price] for price in best_bids),
            sum(self.asks[price] for price in best_asks),
        )

    def snapshot(self) -> DepthSnapshot:
        bids = tuple(sorted(self.bids.items(), reverse=True))
        asks = tuple(sorted(self.asks.items()))
        return DepthSnapshot(SYMBOL, None, self.last_update_id, bids, asks)


def naive_bars(initial: DepthSnapshot, diffs: list[DepthDiff]) -> dict[int, BookBar]:
    """The naive book after every diff with ``event_time_us < (t + 1) s``, for each second t."""
    book = NaiveBook(initial)
    bars: dict[int, BookBar] = {}
    position = 0
    for ts in range(START_SEC, END_SEC + 1):
        while position < len(diffs) and diffs[position].event_time_us < (ts + 1) * 1_000_000:
            book.apply(diffs[position])
            position += 1
        bars[ts] = book.bar(ts)
    return bars


def drive(builder: BookBarBuilder, events: Iterable[object], through_sec: int) -> list[BookBar]:
    """Feed book events one at a time, then close through ``through_sec``; every bar closed."""
    bars: list[BookBar] = []
    for event in events:
        if isinstance(event, DepthDiff):
            bars.extend(builder.add_diff(event))
        elif isinstance(event, ReceivedSnapshot):
            bars.extend(builder.add_snapshot(event.snapshot, event.received_us))
    bars.extend(builder.close_through(through_sec))
    return bars


def test_generated_market_every_second_valid_and_equal_to_naive_book():
    initial, events = market()
    diffs = diffs_of(events)
    builder = BookBarBuilder(SYMBOL)
    assert builder.add_snapshot(initial, START_US) == []
    bars = drive(builder, diffs, END_SEC)

    assert [bar.ts_sec for bar in bars] == list(range(START_SEC, END_SEC + 1))
    assert all(bar.book_update_id != NONE for bar in bars)
    expected = naive_bars(initial, diffs)
    assert bars == [expected[bar.ts_sec] for bar in bars]
    # The id is the last diff's applied by the end of the second, not just any in it.
    last_id_by_sec = {diff.event_time_us // 1_000_000: diff.last_update_id for diff in diffs}
    assert all(bar.book_update_id == last_id_by_sec[bar.ts_sec] for bar in bars)
    assert len(set(last_id_by_sec)) == SECONDS  # the generator touches the book every second
    assert builder.late_events == 0
    assert builder.synchroniser.gap_count == 0


def test_book_top_at_end_of_each_second_matches_last_best_bid_ask():
    initial, events = market()
    quotes = [event for event in events if isinstance(event, BestBidAsk)]
    quote_times = [quote.event_time_us for quote in quotes]
    builder = BookBarBuilder(SYMBOL)
    builder.add_snapshot(initial, START_US)
    checked = 0

    def check_closed(closed: list[BookBar], best_bid: int, best_ask: int) -> None:
        nonlocal checked
        for bar in closed:
            last = bisect_left(quote_times, (bar.ts_sec + 1) * 1_000_000) - 1
            assert last >= 0
            assert (best_bid, best_ask) == (quotes[last].bid_price_e8, quotes[last].ask_price_e8)
            checked += 1

    for diff in diffs_of(events):
        # Closed bars hold the book before the diff that closes them: read its top first.
        book = builder.synchroniser.book
        top = (book.best_bid()[0], book.best_ask()[0]) if book is not None else (NONE, NONE)
        check_closed(builder.add_diff(diff), *top)
    book = builder.synchroniser.book
    check_closed(builder.close_through(END_SEC), book.best_bid()[0], book.best_ask()[0])
    assert checked == SECONDS


def gap_stream() -> tuple[list[object], dict[str, int]]:
    """The generated diffs with one dropped at second ~60, a too-old snapshot received at ~80
    (rejected), and a good snapshot from an independent replay received at ~120."""
    initial, events = market()
    diffs = diffs_of(events)
    # Drop a diff whose successor is in the same second: the gap is seen within that second.
    dropped = next(
        k
        for k, diff in enumerate(diffs)
        if diff.event_time_us >= START_US + 60_000_000
        and diffs[k + 1].event_time_us // 1_000_000 == diff.event_time_us // 1_000_000
    )
    too_old_at = next(k for k, d in enumerate(diffs) if d.event_time_us >= START_US + 80_000_000)
    anchor_at = next(k for k, d in enumerate(diffs) if d.event_time_us >= START_US + 120_000_000)
    naive = NaiveBook(initial)
    stream: list[object] = [ReceivedSnapshot(START_US, initial)]
    for k, diff in enumerate(diffs):
        if k == dropped:
            too_old = naive.snapshot()  # before the lost diff: the hole lies after it
        naive.apply(diff)
        if k != dropped:
            stream.append(diff)
        if k == too_old_at:
            stream.append(ReceivedSnapshot(diff.event_time_us, too_old))
        if k == anchor_at:
            stream.append(ReceivedSnapshot(diff.event_time_us, naive.snapshot()))
    seconds = {
        "gap": diffs[dropped].event_time_us // 1_000_000,
        "too_old": diffs[too_old_at].event_time_us // 1_000_000,
        "anchor": diffs[anchor_at].event_time_us // 1_000_000,
    }
    return stream, seconds


def test_dropped_diff_invalidates_until_a_snapshot_reanchors():
    initial, events = market()
    stream, seconds = gap_stream()
    builder = BookBarBuilder(SYMBOL)
    bars = drive(builder, stream, END_SEC)
    expected = naive_bars(initial, diffs_of(events))

    assert [bar.ts_sec for bar in bars] == list(range(START_SEC, END_SEC + 1))
    for bar in bars:
        if seconds["gap"] <= bar.ts_sec < seconds["anchor"]:
            assert bar == BookBar(bar.ts_sec, NONE, NONE, NONE)
        else:
            assert bar == expected[bar.ts_sec]
    assert seconds["gap"] < seconds["too_old"] < seconds["anchor"] < END_SEC
    assert builder.synchroniser.gap_count == 1
    assert builder.synchroniser.snapshots_rejected == 1
    assert builder.synchroniser.state is SyncState.SYNCED


def test_stream_without_snapshot_never_becomes_valid():
    _, events = market()
    builder = BookBarBuilder(SYMBOL)
    bars = drive(builder, diffs_of(events), END_SEC)

    assert len(bars) == SECONDS
    assert all(bar == BookBar(bar.ts_sec, NONE, NONE, NONE) for bar in bars)
    assert builder.synchroniser.needs_snapshot


def test_batch_path_equals_live_builder_over_exact_range():
    stream, seconds = gap_stream()
    live = drive(BookBarBuilder(SYMBOL), stream, END_SEC)

    start, end = START_SEC - 3, END_SEC + 4
    batch = book_bars_from_events(stream, symbol=SYMBOL, start_sec=start, end_sec=end)
    assert batch.start_sec == start
    assert len(batch) == end - start + 1
    assert batch.ts_sec.tolist() == list(range(start, end + 1))
    rows = list(batch.rows())
    assert rows[:3] == [BookBar(ts, NONE, NONE, NONE) for ts in range(start, START_SEC)]
    assert rows[3:-4] == live
    assert rows[-4:] == [live[-1]._replace(ts_sec=ts) for ts in range(END_SEC + 1, end + 1)]
    assert batch.valid.tolist() == [row.book_update_id != NONE for row in rows]

    # A window inside the stream: earlier events build the book, later ones are not seen.
    window = book_bars_from_events(
        [tuple(event) if isinstance(event, ReceivedSnapshot) else event for event in stream],
        symbol=SYMBOL,
        start_sec=seconds["gap"] - 5,
        end_sec=seconds["anchor"] + 5,
    )
    first = seconds["gap"] - 5 - START_SEC
    assert list(window.rows()) == live[first : first + len(window)]
    assert len(window) == 11 + seconds["anchor"] - seconds["gap"]

    empty = book_bars_from_events(stream, symbol=SYMBOL, start_sec=START_SEC, end_sec=START_SEC - 1)
    assert len(empty) == 0
    assert empty.start_sec == START_SEC


def level(price: int, qty: int) -> tuple[int, int]:
    return price * E8, qty


def small_snapshot() -> DepthSnapshot:
    bids = tuple(level(100 - i, 10 + i) for i in range(7))  # 7 levels: only the best 5 count
    asks = tuple(level(101 + i, 20 + i) for i in range(3))  # fewer than 5: all of them
    return DepthSnapshot(SYMBOL, None, 500, bids, asks)


def diff(second: int, first_id: int, last_id: int, bids=(), asks=()) -> DepthDiff:
    return DepthDiff(
        SYMBOL, (START_SEC + second) * 1_000_000 + 250_000, first_id, last_id, bids, asks
    )


def test_empty_seconds_carry_state_and_late_diffs_still_apply():
    builder = BookBarBuilder(SYMBOL)
    assert builder.add_snapshot(small_snapshot(), START_US) == []
    # Held until a diff decides whether it fits: second 0 ends without a book.
    assert builder.close_through(START_SEC) == [BookBar(START_SEC, NONE, NONE, NONE)]

    assert builder.add_diff(diff(1, 501, 502, bids=(level(100, 1),))) == []
    closed = builder.add_diff(diff(5, 503, 503, asks=(level(101, 0),)))
    state = (502, 1 + 11 + 12 + 13 + 14, 20 + 21 + 22)
    assert closed == [BookBar(START_SEC + ts, *state) for ts in range(1, 5)]

    # Late (second 3 was published) but the book must take it: the next diff continues it.
    assert builder.add_diff(diff(3, 504, 504, bids=(level(96, 0),))) == []
    assert builder.late_events == 1
    assert builder.add_diff(diff(5, 505, 505, asks=(level(110, 7),))) == []
    closed = builder.close_through(START_SEC + 6)
    state = (505, 1 + 11 + 12 + 13 + 15, 21 + 22 + 7)
    assert closed == [BookBar(START_SEC + 5, *state), BookBar(START_SEC + 6, *state)]
    assert builder.synchroniser.gap_count == 0
    assert builder.close_through(START_SEC + 6) == []


def test_levels_parameter_sets_the_depth():
    builder = BookBarBuilder(SYMBOL, levels=2)
    builder.add_snapshot(small_snapshot(), START_US)
    builder.add_diff(diff(0, 500, 501))
    assert builder.close_through(START_SEC) == [BookBar(START_SEC, 501, 10 + 11, 20 + 21)]
    with pytest.raises(ValueError, match="levels"):
        BookBarBuilder(SYMBOL, levels=0)


def test_columns_need_consecutive_seconds():
    rows = [BookBar(START_SEC, 7, 1, 2), BookBar(START_SEC + 1, NONE, NONE, NONE)]
    bars = BookBars.from_rows(rows)
    assert list(bars.rows()) == rows
    assert bars.book_update_id.dtype.name == "int64"
    assert bars.valid.tolist() == [True, False]
    with pytest.raises(ValueError, match="consecutive"):
        BookBars.from_rows([rows[0], rows[1]._replace(ts_sec=START_SEC + 2)])
    with pytest.raises(ValueError, match="consecutive"):
        BookBars.from_rows([rows[1], rows[0]])
    with pytest.raises(ValueError, match="no bars"):
        BookBars.from_rows([])

    invalid = BookBars.invalid(START_SEC, 3)
    assert len(invalid) == 3
    assert invalid.ts_sec.tolist() == [START_SEC, START_SEC + 1, START_SEC + 2]
    assert list(invalid.rows()) == [BookBar(START_SEC + i, NONE, NONE, NONE) for i in range(3)]
    assert not invalid.valid.any()
