"""The local order book against a naive dict model, and Binance's update rule."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from realtime.market.events import DepthDiff, DepthSnapshot, PriceLevel
from realtime.market.order_book import BookOutOfSync, OrderBook, diff_applies

SYMBOL = "BTCUSDT"
TICK = 1_000_000  # 0.01 USDT in e8


def px(ticks: int) -> int:
    return 98_000_00000000 + ticks * TICK


def diff(first: int, last: int, bids=(), asks=()) -> DepthDiff:
    return DepthDiff(SYMBOL, 0, first, last, tuple(bids), tuple(asks))


def snapshot(last_update_id: int, bids=(), asks=()) -> DepthSnapshot:
    return DepthSnapshot(SYMBOL, None, last_update_id, tuple(bids), tuple(asks))


# A narrow price range so diffs keep hitting the same levels: overwrites, removals of
# present and absent levels, and sides that empty out all happen often.
PRICES = st.integers(min_value=-12, max_value=12).map(px)
QTYS = st.one_of(st.just(0), st.integers(min_value=1, max_value=10**12))
LEVELS = st.lists(st.tuples(PRICES, QTYS), max_size=10).map(tuple)
SNAPSHOT_LEVELS = st.lists(
    st.tuples(PRICES, st.integers(min_value=1, max_value=10**12)), max_size=25
).map(tuple)


class NaiveBook:
    """The obvious model: two dicts, sorted on every read."""

    def __init__(self, bids: tuple[PriceLevel, ...], asks: tuple[PriceLevel, ...]) -> None:
        self.bids = {price: qty for price, qty in bids if qty}
        self.asks = {price: qty for price, qty in asks if qty}

    def apply(self, bids: tuple[PriceLevel, ...], asks: tuple[PriceLevel, ...]) -> None:
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for price, qty in levels:
                if qty:
                    side[price] = qty
                else:
                    side.pop(price, None)

    def top(self, n: int) -> tuple[tuple[PriceLevel, ...], tuple[PriceLevel, ...]]:
        bids = tuple(sorted(self.bids.items(), reverse=True)[:n])
        asks = tuple(sorted(self.asks.items())[:n])
        return bids, asks


def assert_matches(book: OrderBook, model: NaiveBook) -> None:
    everything = max(len(model.bids), len(model.asks))
    assert book.top(everything) == model.top(everything)
    assert book.bid_level_count == len(model.bids)
    assert book.ask_level_count == len(model.asks)
    assert book.level_count == len(model.bids) + len(model.asks)
    best_bids, best_asks = model.top(1)
    assert book.best_bid() == (best_bids[0] if best_bids else None)
    assert book.best_ask() == (best_asks[0] if best_asks else None)
    for price in list(model.bids) + list(model.asks):
        assert book.bid_qty(price) == model.bids.get(price, 0)
        assert book.ask_qty(price) == model.asks.get(price, 0)


@given(SNAPSHOT_LEVELS, SNAPSHOT_LEVELS, st.lists(st.tuples(LEVELS, LEVELS), max_size=30))
def test_book_equals_the_naive_model_after_any_diffs(snap_bids, snap_asks, changes):
    book = OrderBook.from_snapshot(snapshot(100, snap_bids, snap_asks))
    model = NaiveBook(snap_bids, snap_asks)
    assert_matches(book, model)
    update_id = 100
    for bids, asks in changes:
        book.apply(diff(update_id + 1, update_id + 3, bids, asks))
        model.apply(bids, asks)
        update_id += 3
        assert book.last_update_id == update_id
        assert_matches(book, model)


@given(SNAPSHOT_LEVELS, SNAPSHOT_LEVELS, st.lists(st.tuples(LEVELS, LEVELS), max_size=10))
def test_snapshot_of_the_book_rebuilds_the_same_book(snap_bids, snap_asks, changes):
    book = OrderBook.from_snapshot(snapshot(7, snap_bids, snap_asks))
    for bids, asks in changes:
        book.apply(diff(book.last_update_id + 1, book.last_update_id + 1, bids, asks))
    picture = book.snapshot()
    assert picture.event_time_us is None
    assert picture.last_update_id == book.last_update_id
    rebuilt = OrderBook.from_snapshot(picture)
    assert rebuilt.snapshot() == picture
    assert rebuilt.level_count == book.level_count


@given(SNAPSHOT_LEVELS, SNAPSHOT_LEVELS, st.integers(min_value=0, max_value=30))
def test_top_is_sorted_best_first_and_truncated(snap_bids, snap_asks, n):
    book = OrderBook.from_snapshot(snapshot(1, snap_bids, snap_asks))
    bids, asks = book.top(n)
    assert len(bids) == min(n, book.bid_level_count)
    assert len(asks) == min(n, book.ask_level_count)
    bid_prices = [price for price, _ in bids]
    ask_prices = [price for price, _ in asks]
    assert bid_prices == sorted(bid_prices, reverse=True)
    assert len(set(bid_prices)) == len(bid_prices)
    assert ask_prices == sorted(ask_prices)
    assert len(set(ask_prices)) == len(ask_prices)
    assert all(qty > 0 for _, qty in bids + asks)
    limited = book.snapshot(n)
    assert (limited.bids, limited.asks) == (bids, asks)


@given(SNAPSHOT_LEVELS, SNAPSHOT_LEVELS)
def test_is_crossed_compares_the_best_prices(snap_bids, snap_asks):
    book = OrderBook.from_snapshot(snapshot(1, snap_bids, snap_asks))
    best_bid, best_ask = book.best_bid(), book.best_ask()
    expected = best_bid is not None and best_ask is not None and best_bid[0] >= best_ask[0]
    assert book.is_crossed() is expected


def test_from_snapshot_skips_empty_levels_and_keeps_the_last_of_a_repeated_price():
    book = OrderBook.from_snapshot(
        snapshot(5, bids=[(px(-1), 3), (px(-2), 0), (px(-1), 4)], asks=[(px(1), 0)])
    )
    assert book.symbol == SYMBOL
    assert book.last_update_id == 5
    assert book.top(10) == (((px(-1), 4),), ())
    assert book.best_ask() is None


def test_an_empty_book_has_no_best_levels():
    book = OrderBook(SYMBOL)
    assert book.best_bid() is None
    assert book.best_ask() is None
    assert book.top(5) == ((), ())
    assert book.level_count == 0
    assert not book.is_crossed()
    assert book.snapshot() == DepthSnapshot(SYMBOL, None, 0, (), ())


def test_apply_sets_absolute_quantities_and_removes_levels():
    book = OrderBook.from_snapshot(
        snapshot(10, bids=[(px(-1), 5), (px(-2), 6)], asks=[(px(1), 7), (px(2), 8)])
    )
    book.apply(
        diff(
            11,
            14,
            bids=[(px(-1), 9), (px(-2), 0), (px(-3), 1), (px(-40), 0)],
            asks=[(px(0), 2), (px(2), 0)],
        )
    )
    assert book.last_update_id == 14
    assert book.top(5) == (((px(-1), 9), (px(-3), 1)), ((px(0), 2), (px(1), 7)))
    assert book.best_bid() == (px(-1), 9)
    assert book.best_ask() == (px(0), 2)


def test_a_book_whose_bid_reaches_the_ask_is_crossed():
    book = OrderBook.from_snapshot(snapshot(1, bids=[(px(0), 1)], asks=[(px(1), 1)]))
    assert not book.is_crossed()
    book.apply(diff(2, 2, bids=[(px(1), 1)]))
    assert book.is_crossed()


def test_top_refuses_a_negative_count():
    with pytest.raises(ValueError, match="n >= 0"):
        OrderBook(SYMBOL).top(-1)


@pytest.mark.parametrize(
    ("book_id", "first", "last", "applies"),
    [
        (100, 101, 105, True),  # the next diff
        (100, 95, 105, True),  # overlaps the book id: absolute quantities, safe to apply
        (100, 100, 100, False),  # u == book id: already in the book
        (100, 90, 99, False),  # u < book id: stale
        (100, 101, 101, True),
    ],
)
def test_update_rule(book_id, first, last, applies):
    assert diff_applies(book_id, diff(first, last)) is applies


def test_update_rule_names_the_missing_ids_on_a_gap():
    with pytest.raises(BookOutOfSync) as caught:
        diff_applies(100, diff(103, 110))
    assert (caught.value.expected_first_id, caught.value.got_first_id) == (101, 103)
    assert "2 update ids missing" in str(caught.value)


@given(
    st.integers(min_value=0, max_value=40),
    st.integers(min_value=0, max_value=40),
    st.integers(min_value=0, max_value=10),
)
def test_update_rule_agrees_with_id_sets(book_id, first, span):
    """Apply iff the diff brings ids the book lacks and none between the book and it is lost."""
    last = first + span
    lost = set(range(book_id + 1, first))
    new = set(range(book_id + 1, last + 1))
    if lost:
        with pytest.raises(BookOutOfSync) as caught:
            diff_applies(book_id, diff(first, last))
        assert caught.value.expected_first_id == min(lost)
        assert caught.value.got_first_id == max(lost) + 1
    else:
        assert diff_applies(book_id, diff(first, last)) is bool(new)


def test_update_applies_or_ignores_and_leaves_the_book_alone_on_a_gap():
    book = OrderBook.from_snapshot(snapshot(100, bids=[(px(-1), 5)], asks=[(px(1), 5)]))
    assert book.update(diff(90, 100, bids=[(px(-1), 1)])) is False
    assert book.bid_qty(px(-1)) == 5
    assert book.update(diff(98, 104, bids=[(px(-1), 2)])) is True
    assert (book.last_update_id, book.bid_qty(px(-1))) == (104, 2)
    with pytest.raises(BookOutOfSync):
        book.update(diff(106, 108, bids=[(px(-1), 3)]))
    assert (book.last_update_id, book.bid_qty(px(-1))) == (104, 2)
    assert book.update(diff(105, 108, asks=[(px(1), 0)])) is True
    assert book.best_ask() is None
