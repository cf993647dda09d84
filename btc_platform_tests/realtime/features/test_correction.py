"""Late trades folded into closed seconds: the bars and vectors of a feed that had them in time."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from btc_platform_tests.realtime.features.streams import START_US, trade_rows
from realtime.features.bars import Bar, BarBuilder
from realtime.features.correction import (
    LateTradeCorrector,
    fold_late_trade,
    same_bits,
)
from realtime.features.engine import FEATURES, LiveFeatureEngine
from realtime.features.fills import FillAggregator
from realtime.market.events import AggTrade, BestBidAsk, Trade

S = 1_000_000
SECOND = START_US // S
PRICE = 98_000 * 10**8


def trades_of(rows: list[tuple[int, int, int, bool]]) -> list[Trade]:
    return [
        Trade("BTCUSDT", index + 1, price, qty, maker, time_us, time_us)
        for index, (time_us, price, qty, maker) in enumerate(rows)
    ]


def aggregated(trades: list[Trade]) -> list[AggTrade]:
    """The aggregate trades of one run of ``trades``, as the role folds a batch of them."""
    fills, aggs = FillAggregator(), []
    for trade in trades:
        done = fills.add(trade)
        if done is not None:
            aggs.append(done)
    done = fills.flush_through(2**62)
    return aggs if done is None else [*aggs, done]


def bars_of(aggs: list[AggTrade], end_sec: int, quote_sec: int | None = None) -> list[Bar]:
    """Every bar from the first event through ``end_sec`` (a quote at ``quote_sec`` first)."""
    builder, bars = BarBuilder(), []
    if quote_sec is not None:
        bars += builder.add_quote(quote(quote_sec))
    for agg in aggs:
        bars += builder.add_agg_trade(agg)
    return bars + builder.close_through(end_sec)


def quote(ts_sec: int) -> BestBidAsk:
    return BestBidAsk("BTCUSDT", ts_sec * S, 1, PRICE - 10**6, 5, PRICE + 10**6, 5)


def streamed(bars: list[Bar]) -> list[list[float]]:
    engine = LiveFeatureEngine()
    return [engine.on_bar(bar) for bar in bars]


def assert_same_vectors(actual: list[list[float]], expected: list[list[float]]) -> None:
    left, right = np.array(actual), np.array(expected)
    assert left.shape == right.shape
    differ = np.argwhere(left.view(np.uint64) != right.view(np.uint64))
    assert len(differ) == 0, [(int(r), FEATURES[c], left[r, c], right[r, c]) for r, c in differ[:5]]


_SPLIT_RUNS = st.lists(
    st.tuples(
        st.sampled_from([0, 0, 0, 1, 250_000]),  # µs after the previous fill: runs are common
        st.sampled_from([-1, 0, 0, 0, 1]),  # price ticks
        st.integers(min_value=1, max_value=10**9),
        st.booleans(),
    ),
    min_size=1,
    max_size=30,
)


@given(_SPLIT_RUNS, st.data())
def test_late_fills_folded_in_chunks_give_the_bar_of_all_fills_in_time(steps, data):
    """The close cuts a taker order's run of fills; the late rest continues it, and the
    folded bar (largest size included) is the one made from every fill in time."""
    rows, time_us, price = [], START_US, PRICE
    for gap, ticks, qty, maker in steps:
        time_us = min(time_us + gap, START_US + 999_999)
        price += ticks * 10**6
        rows.append((time_us, price, qty, maker))
    trades = trades_of(rows)
    cuts = sorted(data.draw(st.sets(st.integers(0, len(trades))), label="cuts"))
    chunks = [trades[a:b] for a, b in zip([0, *cuts], [*cuts, len(trades)], strict=True)]

    in_time = aggregated(chunks[0])
    bar = bars_of(in_time, SECOND, quote_sec=SECOND)[0]
    tail = in_time[-1] if in_time else None
    for chunk in chunks[1:]:
        for agg in aggregated(chunk):
            bar, tail = fold_late_trade(bar, tail, agg)
    assert bar == bars_of(aggregated(trades), SECOND, quote_sec=SECOND)[0]


def close_in_time(
    corrector: LateTradeCorrector, aggs: list[AggTrade], first_sec: int, end_sec: int
) -> dict[int, list[float]]:
    """Close ``first_sec..end_sec`` one by one as the role does, each bar with its tail."""
    by_second: dict[int, list[AggTrade]] = {}
    for agg in aggs:
        by_second.setdefault(agg.transact_time_us // S, []).append(agg)
    builder, published = BarBuilder(), {}
    builder.add_quote(quote(first_sec))
    for second in range(first_sec, end_sec + 1):
        for agg in by_second.get(second, []):
            builder.add_agg_trade(agg)
        for bar in builder.close_through(second):
            in_bar = by_second.get(bar.ts_sec)
            published[bar.ts_sec] = corrector.close(bar, in_bar[-1] if in_bar else None)
    return published


@given(trade_rows(min_size=2, max_size=120), st.data())
def test_a_recomputation_gives_the_vectors_of_a_feed_that_had_every_trade_in_time(rows, data):
    """Folding late trades and recomputing gives, bit for bit, the vectors (and the engine
    state: the next second's vector) of a feed that had them in time; a late trade beyond
    the horizon is refused, as if it never came."""
    horizon = data.draw(st.sampled_from([1, 7, 70, 300]), label="horizon")
    trades = trades_of(rows)
    first_sec = trades[0].transact_time_us // S
    end_sec = trades[-1].transact_time_us // S + data.draw(st.integers(0, 3), label="quiet end")
    late_ids = data.draw(st.sets(st.sampled_from([t.trade_id for t in trades[1:]])), label="late")

    corrector = LateTradeCorrector(horizon_s=horizon)
    on_time = [t for t in trades if t.trade_id not in late_ids]
    published = close_in_time(corrector, aggregated(on_time), first_sec, end_sec)
    refused_seconds = set()
    late = [t for t in trades if t.trade_id in late_ids]
    # Late trades come in id order, folded as the role folds them: runs cut at each batch.
    cuts = sorted(data.draw(st.sets(st.integers(0, len(late))), label="batches"))
    for a, b in zip([0, *cuts], [*cuts, len(late)], strict=True):
        for agg in aggregated(late[a:b]):
            if not corrector.fold(agg):
                refused_seconds.add(agg.transact_time_us // S)
    corrected = corrector.recompute()
    for second in corrected:
        published[second.ts_sec] = second.vector

    horizon_start = end_sec - horizon + 1
    assert all(second < horizon_start for second in refused_seconds)
    assert all(second.ts_sec >= horizon_start for second in corrected)
    kept = [t for t in trades if t.transact_time_us // S not in refused_seconds or t in on_time]
    expected_bars = bars_of(aggregated(kept), end_sec, quote_sec=first_sec)
    assert_same_vectors([published[bar.ts_sec] for bar in expected_bars], streamed(expected_bars))
    engine = LiveFeatureEngine()
    for bar in expected_bars:
        engine.on_bar(bar)
    after = Bar(end_sec + 1, *expected_bars[-1][1:])
    assert same_bits(corrector.engine.on_bar(after), engine.on_bar(after))
    assert corrector.recompute() == []  # nothing folded since: no work


def test_a_last_price_and_quote_older_than_the_windows_are_carried_through_a_recomputation():
    """The engine carries the last price, its time and the quote from any distance back; a
    recomputation keeps them (a fresh engine fed the last 61 bars would not)."""
    trades = trades_of([(START_US + 100, PRICE, 10**8, False)])
    late = Trade("BTCUSDT", 2, PRICE + 10**6, 10**8, True, START_US + 150 * S, START_US + 150 * S)
    corrector = LateTradeCorrector(horizon_s=100)  # the trade and quote left it long ago
    published = close_in_time(corrector, aggregated(trades), SECOND, SECOND + 160)
    assert corrector.fold(aggregated([late])[0])
    corrected = {second.ts_sec: second.vector for second in corrector.recompute()}
    assert min(corrected) == SECOND + 150
    published.update(corrected)
    expected_bars = bars_of(aggregated([*trades, late]), SECOND + 160, quote_sec=SECOND)
    assert_same_vectors(list(published.values()), streamed(expected_bars))
    vector = corrected[SECOND + 150]
    assert vector[FEATURES.index("ret_1s")] != 0.0  # from the price 150 s before
    assert vector[FEATURES.index("spread")] == pytest.approx(0.02)  # the quote 150 s before


def test_a_late_trade_beyond_the_horizon_or_before_the_first_second_is_refused():
    corrector = LateTradeCorrector(horizon_s=10)
    trades = trades_of([(START_US + 5 * S, PRICE, 10**8, False)])
    close_in_time(corrector, aggregated(trades), SECOND, SECOND + 20)
    old = AggTrade("BTCUSDT", -1, PRICE, 1, 0, 0, START_US + 10 * S, False)
    assert not corrector.fold(old)  # second 10 left the horizon (11..20)
    assert not corrector.fold(old._replace(transact_time_us=START_US - S))
    assert corrector.fold(
        old._replace(first_trade_id=2, last_trade_id=2, transact_time_us=START_US + 11 * S)
    )
    with pytest.raises(ValueError, match="already in"):  # counted once, not twice
        corrector.fold(
            old._replace(first_trade_id=2, last_trade_id=2, transact_time_us=START_US + 11 * S)
        )
