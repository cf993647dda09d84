"""Per-second bars: exact aggregates, the same from stored trades and from live events."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from btc_platform_tests.realtime.features.streams import (
    START_US,
    quotes_table,
    trade_rows,
    trades_table,
)
from realtime.features.bars import NONE, Bar, BarBuilder, bars_from_tables, merge_agg_trade
from realtime.features.replay import live_features
from realtime.market.events import AggTrade, BestBidAsk, Trade
from realtime.sim.synthetic_trades import synthetic_trades

SECOND = START_US // 1_000_000


def trade(trade_id: int, time_us: int, price: int, qty: int, maker: bool) -> Trade:
    return Trade("BTCUSDT", trade_id, price, qty, maker, time_us, time_us)


def test_live_bar_aggregates_exactly():
    builder = BarBuilder()
    price = 98_765_43 * 10**6
    assert builder.add_trade(trade(1, START_US + 10, price, 3 * 10**8, False)) == []
    assert builder.add_trade(trade(2, START_US + 20, price + 10**6, 10**5, True)) == []
    closed = builder.add_trade(trade(3, START_US + 2_000_500, price, 7, False))
    first, empty = closed
    assert first == Bar(
        ts_sec=SECOND,
        n_trades=2,
        buy_qty_e8=3 * 10**8,
        sell_qty_e8=10**5,
        notional_e16=price * 3 * 10**8 + (price + 10**6) * 10**5,  # > 2**63: exact Python int
        first_price_e8=price,
        last_price_e8=price + 10**6,
        max_qty_e8=3 * 10**8,
        last_trade_time_us=START_US + 20,
        first_trade_id=1,
        last_trade_id=2,
        bid_price_e8=NONE,
        ask_price_e8=NONE,
        bid_qty_e8=NONE,
        ask_qty_e8=NONE,
    )
    assert first.notional_e16 > 2**63
    assert empty == Bar(
        SECOND + 1, 0, 0, 0, 0, NONE, NONE, 0, NONE, NONE, NONE, NONE, NONE, NONE, NONE
    )
    assert builder.open_sec == SECOND + 2


def test_late_events_are_counted_and_not_applied():
    builder = BarBuilder()
    builder.add_trade(trade(1, START_US + 1_500_000, 10**8, 1, False))
    assert builder.add_trade(trade(2, START_US + 10, 10**8, 1, False)) == []
    assert builder.late_events == 1
    (bar,) = builder.close_through(SECOND + 1)
    assert bar.n_trades == 1


def test_quotes_set_the_last_bid_and_ask_of_their_second():
    builder = BarBuilder()
    builder.add_quote(BestBidAsk("BTCUSDT", START_US + 1, 1, 100, 1, 101, 1))
    builder.add_quote(BestBidAsk("BTCUSDT", START_US + 2, 2, 99, 5, 102, 7))
    (bar,) = builder.close_through(SECOND)
    assert (bar.bid_price_e8, bar.ask_price_e8, bar.n_trades) == (99, 102, 0)
    assert (bar.bid_qty_e8, bar.ask_qty_e8) == (5, 7)


@settings(max_examples=150, deadline=None)
@given(trade_rows())
def test_stored_and_live_bars_are_identical(rows):
    table = trades_table(rows)
    live_bars, _ = live_features(table)
    assert list(bars_from_tables(table).rows()) == list(live_bars.rows())


def test_stored_and_live_bars_with_quotes_are_identical():
    rows = [
        (START_US + i * 700_000, 98_000 * 10**8 + i * 10**6, 10**6, i % 2 == 0) for i in range(40)
    ]
    quotes = quotes_table(
        [(START_US + 5 + i * 900_000, 97_999 * 10**8, 98_001 * 10**8 + i) for i in range(30)]
    )
    table = trades_table(rows)
    live_bars, _ = live_features(table, quotes)
    assert list(bars_from_tables(table, quotes).rows()) == list(live_bars.rows())


def test_a_generated_hour_gives_identical_bars_including_silent_seconds():
    table = synthetic_trades(40_000, seconds=3_600, seed=3, silent_share=0.05)
    bars = bars_from_tables(table)
    live_bars, _ = live_features(table)
    assert (bars.n_trades == 0).sum() > 60  # silent runs are part of the grid
    assert list(bars.rows()) == list(live_bars.rows())
    assert int(bars.n_trades.sum()) == table.num_rows
    assert sum(bars.notional_e16) == sum(
        price * qty
        for price, qty in zip(
            table["price_e8"].to_pylist(), table["qty_e8"].to_pylist(), strict=True
        )
    )


def test_an_explicit_range_includes_leading_and_trailing_empty_seconds():
    table = trades_table([(START_US + 2_000_000, 10**8, 5, False)])
    bars = bars_from_tables(table, start_sec=SECOND, end_sec=SECOND + 4)
    assert bars.n_trades.tolist() == [0, 0, 1, 0, 0]
    assert bars.last_price_e8.tolist() == [NONE, NONE, 10**8, NONE, NONE]


# -- a late aggregate trade merged into its closed second -------------------------------------

_AGG_STEPS = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=3),  # ids from the previous aggregate's last
        st.integers(min_value=1, max_value=4),  # fills in it
        st.integers(min_value=0, max_value=200_000),  # µs after the previous one
        st.integers(min_value=-2, max_value=2),  # price ticks
        st.integers(min_value=1, max_value=5 * 10**8),
        st.booleans(),
    ),
    min_size=1,
    max_size=25,
)


def aggs_of_one_second(steps: list[tuple[int, int, int, int, int, bool]]) -> list[AggTrade]:
    """Aggregate trades of second ``SECOND`` in id (and time) order; ids may have holes."""
    aggs, last_id, time_us, price = [], 0, START_US, 98_000 * 10**8
    for skip, fills, gap_us, ticks, qty, maker in steps:
        time_us = min(time_us + gap_us, START_US + 999_999)
        price += ticks * 10**6
        first_id = last_id + skip
        last_id = first_id + fills - 1
        aggs.append(AggTrade("BTCUSDT", -1, price, qty, first_id, last_id, time_us, maker))
    return aggs


@given(_AGG_STEPS, st.data())
def test_a_merged_late_trade_gives_the_bar_fed_in_id_order(steps, data):
    """Whatever came in time and in whatever order the rest comes late, the merged bar is
    the one ``BarBuilder`` makes from all of them in id order."""
    aggs = aggs_of_one_second(steps)
    late = data.draw(st.sets(st.sampled_from(range(len(aggs)))), label="late")
    order = data.draw(st.permutations(sorted(late)), label="late order")
    quote = BestBidAsk("BTCUSDT", START_US + 5, 1, 97_999 * 10**8, 7, 98_001 * 10**8, 9)

    def built(fed: list[AggTrade]) -> Bar:
        builder = BarBuilder()
        builder.add_quote(quote)
        for agg in fed:
            builder.add_agg_trade(agg)
        return builder.close_through(SECOND)[0]

    bar = built([agg for index, agg in enumerate(aggs) if index not in late])
    for index in order:
        bar = merge_agg_trade(bar, aggs[index])
    assert bar == built(aggs)


def test_a_merge_refuses_ids_the_bar_holds_and_trades_of_another_second():
    aggs = aggs_of_one_second([(1, 2, 10, 0, 10**8, False), (1, 1, 10, 1, 10**8, True)])
    builder = BarBuilder()
    for agg in aggs:
        builder.add_agg_trade(agg)
    bar = builder.close_through(SECOND)[0]
    for again in (aggs[0], aggs[1], aggs[0]._replace(last_trade_id=5)):
        with pytest.raises(ValueError, match="already in"):
            merge_agg_trade(bar, again)
    next_second = aggs[1]._replace(
        first_trade_id=9, last_trade_id=9, transact_time_us=START_US + 10**6
    )
    with pytest.raises(ValueError, match="not in second"):
        merge_agg_trade(bar, next_second)
