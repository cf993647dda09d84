"""Per-stream de-duplication by id, and the flattening of trade batches."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from realtime.ingest.dedup import BUS_KIND, Deduplicator, flatten, stream_of
from realtime.market.events import BestBidAsk, DepthDiff, DepthSnapshot, Trade, TradeBatch

T0 = 1_767_225_600_000_000


def batch(*trade_ids: int, transact_us: int = T0) -> TradeBatch:
    trades = tuple(
        Trade("BTCUSDT", i, 98_000 * 10**8, 10**6, True, transact_us, transact_us + 3)
        for i in trade_ids
    )
    return TradeBatch("BTCUSDT", transact_us + 3, transact_us, trades)


def quote(book_update_id: int) -> BestBidAsk:
    return BestBidAsk("BTCUSDT", T0, book_update_id, 1, 2, 3, 4)


def diff(first_id: int, last_id: int) -> DepthDiff:
    return DepthDiff("BTCUSDT", T0, first_id, last_id, (), ())


def depth20(last_id: int) -> DepthSnapshot:
    return DepthSnapshot("BTCUSDT", T0, last_id, (), ())


def test_a_batch_is_flattened_to_its_trades_in_order_with_the_batch_transact_time() -> None:
    trades = flatten(batch(5, 6, 7))
    assert [t.trade_id for t in trades] == [5, 6, 7]
    odd = batch(8, 9)._replace(transact_time_us=T0 + 50)
    assert {t.transact_time_us for t in flatten(odd)} == {T0 + 50}


def test_trades_already_published_are_repeats_and_the_rest_of_the_batch_is_new() -> None:
    dedup = Deduplicator()
    first = dedup.admit(batch(1, 2, 3))
    assert (first.stream, [t.trade_id for t in first.events], first.duplicates) == (
        "trade",
        [1, 2, 3],
        0,
    )
    overlap = dedup.admit(batch(2, 3, 4, 5))
    assert [t.trade_id for t in overlap.events] == [4, 5]
    assert overlap.duplicates == 2
    assert dedup.admit(batch(5)).events == ()
    assert dedup.last_id("trade") == 5


def test_each_book_stream_is_filtered_by_its_own_id() -> None:
    dedup = Deduplicator()
    assert dedup.admit(quote(10)).events == (quote(10),)
    assert dedup.admit(quote(25)).events == (quote(25),)  # culled ids jump: fine
    assert dedup.admit(quote(25)).duplicates == 1
    assert dedup.admit(diff(1, 30)).events == (diff(1, 30),)
    assert dedup.admit(diff(1, 30)).duplicates == 1
    # depth20 snapshots are filtered apart from the diffs, by their last_update_id.
    assert dedup.admit(depth20(30)).events == (depth20(30),)
    assert dedup.admit(depth20(29)).events == ()
    assert [dedup.last_id(s) for s in ("bestBidAsk", "depth", "depth20", "trade")] == [
        25,
        30,
        30,
        None,
    ]


def test_streams_map_to_their_bus_kinds() -> None:
    assert [BUS_KIND[stream_of(m)] for m in (batch(1), quote(1), diff(1, 1), depth20(1))] == [
        "trade",
        "bba",
        "depth",
        "depth",
    ]


@given(st.lists(st.lists(st.integers(1, 40), min_size=1, max_size=4), max_size=40))
def test_what_is_admitted_is_strictly_increasing_and_every_trade_is_counted_once(
    batches: list[list[int]],
) -> None:
    dedup = Deduplicator()
    admitted: list[int] = []
    total = 0
    for ids in batches:
        start = ids[0]
        consecutive = list(range(start, start + len(ids)))  # a batch's ids are consecutive
        result = dedup.admit(batch(*consecutive))
        admitted.extend(t.trade_id for t in result.events)
        total += len(result.events) + result.duplicates
    assert admitted == sorted(set(admitted))
    assert total == sum(len(ids) for ids in batches)
