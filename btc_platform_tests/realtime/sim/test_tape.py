"""The trade tape: aggregate grouping, Binance's REST windows, day slices, klines, quote qty."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from realtime.market.events import Trade, TradeBatch
from realtime.market.quote_qty import quote_qty_e8
from realtime.sim.tape import TradeTape

SYMBOL = "BTCUSDT"
FIRST_AGG = 500
T0_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
MINUTE_US = 60_000_000
TICK_E8 = 1_000_000
LOT_E8 = 1_000


def batch(
    first_id: int, time_us: int, prices: list[int], *, qty: int = LOT_E8, maker: bool = False
) -> TradeBatch:
    """One taker match: consecutive trade ids from ``first_id``, one per price."""
    trades = tuple(
        Trade(SYMBOL, first_id + i, price, qty * (i + 1), maker, time_us, time_us)
        for i, price in enumerate(prices)
    )
    return TradeBatch(SYMBOL, time_us, time_us, trades)


def tape_of(*batches: TradeBatch) -> TradeTape:
    tape = TradeTape(SYMBOL, FIRST_AGG)
    for each in batches:
        tape.record(each)
    return tape


# -- aggregate trades ------------------------------------------------------------------------


def test_runs_of_equal_price_within_a_batch_are_one_aggregate_trade() -> None:
    p, q = 100 * TICK_E8, 101 * TICK_E8
    tape = tape_of(batch(10, T0_US, [p, p, q, q, q, p]), batch(16, T0_US + 5, [p], maker=True))

    trades = tape.trades()
    assert trades.trade_id.tolist() == list(range(10, 17))
    assert trades.agg_trade_id.tolist() == [500, 500, 501, 501, 501, 502, 503]
    aggs = tape.agg_trades()
    assert aggs.agg_trade_id.tolist() == [500, 501, 502, 503]
    assert aggs.price_e8.tolist() == [p, q, p, p]
    assert aggs.first_trade_id.tolist() == [10, 12, 15, 16]
    assert aggs.last_trade_id.tolist() == [11, 14, 15, 16]
    # Quantities in a batch are LOT * (index + 1): the aggregate sums its trades'.
    assert aggs.qty_e8.tolist() == [LOT_E8 * 3, LOT_E8 * (3 + 4 + 5), LOT_E8 * 6, LOT_E8]
    assert aggs.time_us.tolist() == [T0_US, T0_US, T0_US, T0_US + 5]
    assert aggs.is_buyer_maker.tolist() == [False, False, False, True]
    assert tape.next_agg_trade_id == 504
    assert len(tape) == 7
    assert tape.last_time_us == T0_US + 5


def test_a_new_batch_starts_a_new_aggregate_even_at_the_same_price_and_time() -> None:
    p = 100 * TICK_E8
    tape = tape_of(batch(1, T0_US, [p, p]), batch(3, T0_US, [p, p]), batch(5, T0_US, [p]))
    aggs = tape.agg_trades()
    assert aggs.agg_trade_id.tolist() == [500, 501, 502]
    assert aggs.first_trade_id.tolist() == [1, 3, 5]
    assert aggs.last_trade_id.tolist() == [2, 4, 5]


def test_columns_are_rebuilt_when_the_tape_grows() -> None:
    p = 100 * TICK_E8
    tape = tape_of(batch(1, T0_US, [p]))
    assert tape.agg_trades().agg_trade_id.tolist() == [500]
    tape.record(batch(2, T0_US + 1, [p + TICK_E8]))
    assert tape.trades().trade_id.tolist() == [1, 2]
    assert tape.agg_trades().agg_trade_id.tolist() == [500, 501]


def test_an_empty_tape_has_empty_views() -> None:
    tape = TradeTape(SYMBOL, FIRST_AGG)
    assert len(tape) == 0
    assert tape.last_time_us is None
    assert len(tape.agg_trades().agg_trade_id) == 0
    assert len(tape.agg_trades_window(None, None, None, 10).agg_trade_id) == 0
    assert len(tape.trades_from(None, 10).trade_id) == 0
    assert len(tape.klines(MINUTE_US, None, None, 10, T0_US).open_time_us) == 0


# -- REST windows ----------------------------------------------------------------------------


def ten_aggs() -> TradeTape:
    """Aggregates 500..509 at T0 + 10 * k ms, one trade each (ids 100..109)."""
    return tape_of(*(batch(100 + k, T0_US + 10_000 * k, [(100 + k) * TICK_E8]) for k in range(10)))


def window_ids(tape: TradeTape, from_id=None, start=None, end=None, limit=1000) -> list[int]:
    return tape.agg_trades_window(from_id, start, end, limit).agg_trade_id.tolist()


def at(k: int) -> int:
    return T0_US + 10_000 * k


def test_agg_trades_window_by_from_id() -> None:
    tape = ten_aggs()
    assert window_ids(tape, from_id=503, limit=3) == [503, 504, 505]
    assert window_ids(tape, from_id=508) == [508, 509]
    assert window_ids(tape, from_id=400, limit=2) == [500, 501]
    assert window_ids(tape, from_id=510) == []


def test_agg_trades_window_start_only_is_the_oldest_from_the_start() -> None:
    tape = ten_aggs()
    assert window_ids(tape, start=at(3), limit=4) == [503, 504, 505, 506]
    assert window_ids(tape, start=at(3) + 1, limit=2) == [504, 505]
    assert window_ids(tape, start=at(8)) == [508, 509]


def test_agg_trades_window_end_only_is_the_newest_up_to_the_end() -> None:
    tape = ten_aggs()
    assert window_ids(tape, end=at(6), limit=3) == [504, 505, 506]  # the end is inclusive
    assert window_ids(tape, end=at(6) - 1, limit=3) == [503, 504, 505]
    assert window_ids(tape, end=at(1)) == [500, 501]


def test_agg_trades_window_both_bounds_are_inclusive_and_start_wins_the_limit() -> None:
    tape = ten_aggs()
    assert window_ids(tape, start=at(2), end=at(5)) == [502, 503, 504, 505]
    assert window_ids(tape, start=at(2), end=at(5), limit=2) == [502, 503]
    assert window_ids(tape, start=at(2) + 1, end=at(5) - 1) == [503, 504]
    assert window_ids(tape, start=at(5), end=at(2)) == []


def test_agg_trades_window_neither_bound_is_the_newest() -> None:
    tape = ten_aggs()
    assert window_ids(tape, limit=3) == [507, 508, 509]
    assert window_ids(tape, limit=1000) == list(range(500, 510))


def test_trades_from_an_id_or_the_most_recent() -> None:
    tape = ten_aggs()
    assert tape.trades_from(104, 3).trade_id.tolist() == [104, 105, 106]
    assert tape.trades_from(108, 5).trade_id.tolist() == [108, 109]
    assert tape.trades_from(None, 4).trade_id.tolist() == [106, 107, 108, 109]
    assert tape.trades_from(110, 5).trade_id.tolist() == []
    assert tape.trades_from(50, 2).trade_id.tolist() == [100, 101]


def test_day_is_half_open() -> None:
    tape = ten_aggs()
    assert tape.day(at(2), at(5)).trade_id.tolist() == [102, 103, 104]
    assert tape.day(at(2) + 1, at(5) + 1).trade_id.tolist() == [103, 104, 105]
    assert tape.day(at(10), at(20)).trade_id.tolist() == []


# -- klines ----------------------------------------------------------------------------------


def naive_klines(batches: list[TradeBatch], interval_us: int, now_us: int) -> list[tuple]:
    """Candles computed trade by trade in Python, one dict lookup per interval."""
    trades = [(b.transact_time_us, t) for b in batches for t in b.trades]
    first_open = trades[0][0] // interval_us * interval_us
    last_open = max(now_us, trades[-1][0]) // interval_us * interval_us
    rows = []
    close = trades[0][1].price_e8
    for open_us in range(first_open, last_open + 1, interval_us):
        inside = [t for time_us, t in trades if open_us <= time_us < open_us + interval_us]
        if inside:
            prices = [t.price_e8 for t in inside]
            quote = [t.price_e8 * t.qty_e8 // 10**8 for t in inside]
            buys = [t for t in inside if not t.is_buyer_maker]
            close = prices[-1]
            rows.append(
                (
                    open_us,
                    prices[0],
                    max(prices),
                    min(prices),
                    close,
                    sum(t.qty_e8 for t in inside),
                    open_us + interval_us - 1,
                    sum(quote),
                    len(inside),
                    sum(t.qty_e8 for t in buys),
                    sum(t.price_e8 * t.qty_e8 // 10**8 for t in buys),
                )
            )
        else:
            rows.append(
                (open_us, close, close, close, close, 0, open_us + interval_us - 1, 0, 0, 0, 0)
            )
    return rows


def kline_rows(tape: TradeTape, interval_us, start, end, limit, now_us) -> list[tuple]:
    klines = tape.klines(interval_us, start, end, limit, now_us)
    return [tuple(int(v) for v in row) for row in zip(*klines, strict=True)]


@st.composite
def trade_batches(draw: st.DrawFn) -> list[TradeBatch]:
    """Batches over a few minutes with quiet minutes, prices on the tick, sizes on the lot."""
    n = draw(st.integers(1, 40))
    gaps = draw(st.lists(st.integers(0, 150_000_000), min_size=n, max_size=n))
    batches = []
    time_us = T0_US + draw(st.integers(0, MINUTE_US - 1))
    trade_id = 1
    for gap in gaps:
        time_us += gap
        size = draw(st.integers(1, 4))
        prices = draw(
            st.lists(st.integers(90_000 * 100, 90_020 * 100), min_size=size, max_size=size)
        )
        qtys = draw(st.lists(st.integers(1, 10**6), min_size=size, max_size=size))
        maker = draw(st.booleans())
        trades = tuple(
            Trade(SYMBOL, trade_id + i, p * TICK_E8, q * LOT_E8, maker, time_us, time_us)
            for i, (p, q) in enumerate(zip(prices, qtys, strict=True))
        )
        trade_id += size
        batches.append(TradeBatch(SYMBOL, time_us, time_us, trades))
    return batches


@settings(max_examples=60, deadline=None)
@given(batches=trade_batches(), interval_us=st.sampled_from([1_000_000, MINUTE_US, 3 * MINUTE_US]))
def test_klines_equal_a_naive_per_interval_computation(
    batches: list[TradeBatch], interval_us: int
) -> None:
    tape = tape_of(*batches)
    now_us = batches[-1].transact_time_us + 2 * interval_us + 7
    expected = naive_klines(batches, interval_us, now_us)
    assert kline_rows(tape, interval_us, None, None, 10_000, now_us) == expected
    # Windows select candles by open time with the aggregate-trade rules.
    assert kline_rows(tape, interval_us, None, None, 3, now_us) == expected[-3:]
    middle = expected[len(expected) // 2][0]
    assert (
        kline_rows(tape, interval_us, middle, None, 2, now_us)
        == [row for row in expected if row[0] >= middle][:2]
    )
    assert (
        kline_rows(tape, interval_us, None, middle, 2, now_us)
        == [row for row in expected if row[0] <= middle][-2:]
    )
    assert kline_rows(tape, interval_us, middle + 1, middle + 3 * interval_us, 100, now_us) == [
        row for row in expected if middle < row[0] <= middle + 3 * interval_us
    ]


def test_empty_minutes_carry_the_previous_close_with_zero_volume() -> None:
    p = 90_000 * 10**8
    tape = tape_of(
        batch(1, T0_US + 5, [p, p + TICK_E8]),
        batch(3, T0_US + 3 * MINUTE_US + 1, [p - TICK_E8], maker=True),
    )
    rows = kline_rows(tape, MINUTE_US, None, None, 100, T0_US + 4 * MINUTE_US)
    assert [row[0] for row in rows] == [T0_US + k * MINUTE_US for k in range(5)]
    carried = p + TICK_E8
    for row in rows[1:3]:
        assert row[1:5] == (carried, carried, carried, carried)
        assert row[5] == row[7] == row[8] == row[9] == row[10] == 0
    assert rows[3][1:5] == (p - TICK_E8,) * 4
    assert rows[3][8] == 1
    assert rows[3][9] == 0  # the buyer was the maker: no taker-buy volume
    assert rows[4][1:5] == (p - TICK_E8,) * 4
    assert rows[4][8] == 0
    # A window that starts in the gap still carries the close from before the window.
    assert (
        kline_rows(tape, MINUTE_US, T0_US + 2 * MINUTE_US, None, 1, T0_US)[0][1:5] == (carried,) * 4
    )


def test_kline_quote_volume_is_exact_beyond_int64() -> None:
    price = 1_000_000 * 10**8  # 1,000,000 USDT
    qty = 9_000 * 10**8  # 9,000 BTC: 9e9 USDT a trade, 9e17 at e8
    batches = [batch(1 + k, T0_US + k, [price], qty=qty) for k in range(20)]
    tape = tape_of(*batches)
    klines = tape.klines(MINUTE_US, None, None, 10, T0_US)
    per_trade = price * qty // 10**8
    assert klines.quote_volume_e8.tolist() == [per_trade * 20]
    assert per_trade * 20 > 2**63


# -- quote quantity --------------------------------------------------------------------------

int64 = st.integers(0, 2**63 - 1)


@settings(max_examples=200, deadline=None)
@given(
    pairs=st.lists(
        st.one_of(
            st.tuples(
                st.integers(1, 10**7).map(lambda ticks: ticks * TICK_E8),
                st.integers(0, 10**8).map(lambda lots: lots * 100),
            ),
            st.tuples(int64, int64),
        ),
        max_size=20,
    )
)
def test_quote_qty_e8_is_exact(pairs: list[tuple[int, int]]) -> None:
    prices = np.array([p for p, _ in pairs], dtype=np.int64)
    qtys = np.array([q for _, q in pairs], dtype=np.int64)
    result = quote_qty_e8(prices, qtys)
    assert [int(v) for v in result.tolist()] == [p * q // 10**8 for p, q in pairs]


def test_quote_qty_e8_stays_int64_on_the_grid_and_falls_back_off_it() -> None:
    on_grid = quote_qty_e8(np.array([2_816_547 * TICK_E8]), np.array([123 * LOT_E8]))
    assert on_grid.dtype == np.int64
    assert on_grid.tolist() == [2_816_547 * TICK_E8 * 123 * LOT_E8 // 10**8]
    off_grid = quote_qty_e8(np.array([123_456_789]), np.array([987_654_321]))
    assert off_grid.dtype == object
    assert off_grid.tolist() == [123_456_789 * 987_654_321 // 10**8]
    # On the grid but past int64: Python ints too.
    huge = quote_qty_e8(np.array([2**40 * TICK_E8]), np.array([2**30 * 100]))
    assert huge.dtype == object
    assert huge.tolist() == [2**40 * TICK_E8 * 2**30 * 100 // 10**8]
    assert huge.tolist()[0] > 2**63
