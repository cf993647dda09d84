"""The feature engine: hand-checked values, warm-up rules, parity and leakage."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from btc_platform_tests.realtime.features.streams import (
    START_US,
    quotes_table,
    trade_rows,
    trades_table,
)
from realtime.binance.archive import read_table
from realtime.features.bars import Bar, bars_from_tables, empty_bar, merge_agg_trade
from realtime.features.correction import same_bits
from realtime.features.engine import FEATURES, LiveFeatureEngine, batch_features
from realtime.features.replay import live_features, replay_parity
from realtime.market.events import AggTrade
from realtime.sim.captures import book_ticker_csv
from realtime.sim.synthetic_trades import synthetic_trades

CAPTURE = Path(__file__).parents[2] / "fixtures" / "binance_capture_2023-04-05"
E8 = 10**8
S = 1_000_000


def column(features: np.ndarray, name: str) -> np.ndarray:
    return features[:, FEATURES.index(name)]


def assert_bits_equal(left: np.ndarray, right: np.ndarray) -> None:
    assert left.shape == right.shape
    differ = np.argwhere(left.view(np.uint64) != right.view(np.uint64))
    assert len(differ) == 0, [(int(r), FEATURES[c], left[r, c], right[r, c]) for r, c in differ[:5]]


@pytest.fixture(scope="module")
def small_day() -> np.ndarray:
    """Seconds 0..5: two trades, two empty seconds, one trade, then one more empty second."""
    rows = [
        (START_US + 100, 100 * E8, 1 * E8, False),  # taker buy 1 @ 100
        (START_US + 200_000, 101 * E8, 3 * E8, True),  # taker sell 3 @ 101
        (START_US + 2 * S + 500_000, 102 * E8, 2 * E8, False),  # second 2: taker buy 2 @ 102
        (START_US + 5 * S + 1, 102 * E8, 1, False),  # second 5: a tiny trade
    ]
    return batch_features(bars_from_tables(trades_table(rows)))


def test_values_of_a_hand_checked_stream(small_day):
    f = small_day
    assert column(f, "n_trades_1s").tolist() == [2, 0, 1, 0, 0, 1]
    assert column(f, "tvi_1s")[:3].tolist() == [-0.5, 0.0, 1.0]
    assert column(f, "avg_trade_size_1s")[:3].tolist() == [2.0, 0.0, 2.0]
    assert column(f, "buy_vol_1s")[0] == 1.0
    assert column(f, "sell_vol_1s")[0] == 3.0
    assert column(f, "ret_1s")[2] == math.log(102.0) - math.log(101.0)
    assert column(f, "ret_1s")[1] == 0.0  # an empty second carries the price
    assert column(f, "ret_2s")[2] == math.log(102.0) - math.log(101.0)
    assert column(f, "last_price_minus_1s")[2] == 1.0
    assert column(f, "time_since_last_trade_ms")[:2].tolist() == [
        800.0,
        1800.0,
    ]  # last trade at 0.2 s
    # Second 4 closes the first full 5-second window: VWAP = 607 / 6, P = 102.
    assert column(f, "vwap_5s_dev")[4] == 5 / 607
    assert column(f, "n_trades_5s")[4] == 3.0
    assert column(f, "tvi_5s")[4] == 0.0
    assert column(f, "last_price_minus_5s")[5] == 102.0 - 100.0 - 1.0  # P_5 - P_0 = 102 - 101


def test_warm_up_and_undefined_features_are_null(small_day):
    f = small_day
    for name, first_defined in [
        ("ret_1s", 1),
        ("ret_2s", 2),
        ("ret_5s", 5),
        ("n_trades_5s", 4),
        ("vwap_5s_dev", 4),
        ("buy_vol_5s", 4),
        ("tvi_5s", 4),
        ("last_price_minus_5s", 5),
    ]:
        defined = ~np.isnan(column(f, name))
        assert defined.tolist() == [i >= first_defined for i in range(6)], name
    for name in ("vol_ret_10s", "burst_1s", "large_trade_flag_5s", "spread"):
        assert np.isnan(column(f, name)).all(), name
    assert f.view(np.uint64)[np.isnan(f)].tolist() == [0x7FF8000000000000] * int(np.isnan(f).sum())


def test_rolling_windows_fill_at_their_documented_second():
    rows = [
        (START_US + i * S + 1000, (98_000 + (i % 7)) * E8, (1 + i % 5) * 10**6, i % 3 == 0)
        for i in range(75)
    ]
    f = batch_features(bars_from_tables(trades_table(rows)))
    assert np.isnan(column(f, "vol_ret_10s")).sum() == 10
    assert np.isnan(column(f, "burst_1s")).sum() == 59
    assert np.isnan(column(f, "large_trade_flag_5s")).sum() == 59
    assert set(column(f, "burst_1s")[59:].tolist()) <= {0.0, 1.0}
    # std of the ten 1-second returns ending at second 10, by the contract's own recipe.
    returns = [math.log(98_000 + i % 7) - math.log(98_000 + (i - 1) % 7) for i in range(1, 11)]
    mean = sum(returns) / 10
    assert column(f, "vol_ret_10s")[10] == math.sqrt(
        sum((r - mean) * (r - mean) for r in returns) / 10
    )


def test_burst_and_large_trade_flags_fire_on_an_outlier_second():
    rows = [(START_US + i * S, 98_000 * E8, 10**6, False) for i in range(70)]
    rows += [(START_US + 70 * S + k, 98_000 * E8, 10**6 if k else 10**9, False) for k in range(5)]
    f = batch_features(bars_from_tables(trades_table(rows)))
    assert column(f, "burst_1s")[69] == 0.0
    assert column(f, "burst_1s")[70] == 1.0
    assert column(f, "large_trade_flag_5s")[70] == 1.0
    assert column(f, "large_trade_flag_5s")[69] == 1.0  # all seconds equal: at the percentile


def test_spread_comes_from_the_last_quote_and_carries_forward():
    trades = trades_table([(START_US + i * S, 98_000 * E8, 10**6, False) for i in range(4)])
    quotes = quotes_table(
        [
            (START_US + S + 5, 97_999 * E8, 98_000 * E8 + 10**6),
            (START_US + S + 9, 97_999 * E8, 98_001 * E8),
        ]
    )
    spread = column(batch_features(bars_from_tables(trades, quotes)), "spread")
    assert np.isnan(spread[0])
    assert spread[1:].tolist() == [2.0, 2.0, 2.0]


@settings(max_examples=120, deadline=None)
@given(trade_rows(max_size=200))
def test_live_equals_batch_bit_for_bit_on_any_stream(rows):
    table = trades_table(rows)
    _, live = live_features(table)
    assert_bits_equal(batch_features(bars_from_tables(table)), live)


def test_live_equals_batch_on_a_generated_window_with_quotes():
    trades = synthetic_trades(60_000, seconds=1_800, seed=11, silent_share=0.05)
    times = trades["transact_time"].cast("int64").to_numpy()[::7]
    quotes = quotes_table(
        [
            (int(t) + 3, 98_000 * E8 - 10**6, 98_000 * E8 + (i % 4) * 10**6)
            for i, t in enumerate(times)
        ]
    )
    report = replay_parity(trades, quotes)
    assert report.equal, report.summary()
    assert report.seconds >= 1_790
    assert report.quotes == len(times)


def test_live_equals_batch_on_the_real_capture():
    trades = read_table(CAPTURE / "BTCUSDT-trades-2023-04-05.zip", "trades")
    quotes = book_ticker_csv(CAPTURE / "bookTicker.csv")
    assert (trades.num_rows, quotes.num_rows) == (3_144, 8_015)
    report = replay_parity(trades, quotes)
    assert report.equal, report.summary()
    assert report.seconds == 416
    _, live = live_features(trades, quotes)
    assert not np.isnan(column(live, "spread")[1:]).any()  # the real book feeds the spread


@settings(max_examples=80, deadline=None)
@given(trade_rows(min_size=2, max_size=120), st.data())
def test_changing_trades_after_t_changes_no_feature_at_t(rows, data):
    """Leakage: rewrite everything after second t; every vector up to t keeps its bits."""
    start_sec = rows[0][0] // S
    last_sec = rows[-1][0] // S
    t = data.draw(st.integers(min_value=start_sec, max_value=last_sec))
    before = [row for row in rows if row[0] // S <= t]
    after = [
        (
            time_us,
            price + data.draw(st.integers(-5, 5)) * 10**6,
            data.draw(st.integers(1, 10**9)),
            not maker,
        )
        for time_us, price, _, maker in rows
        if time_us // S > t
    ]
    extra = data.draw(st.lists(st.integers(1, 30_000_000), max_size=5))
    after += [((t + 1) * S + offset, 99_000 * E8, 10**7, True) for offset in sorted(extra)]
    after.sort(key=lambda row: row[0])

    original = batch_features(bars_from_tables(trades_table(rows)))
    changed = batch_features(bars_from_tables(trades_table(before + after)))
    rows_up_to_t = t - start_sec + 1
    assert_bits_equal(original[:rows_up_to_t], changed[:rows_up_to_t])


def _trade_bar(ts_sec: int, index: int) -> Bar:
    """A second with one aggregate trade (price, size and side varying with ``index``)."""
    price, qty = (30_000 + index % 7) * E8, (1 + index % 3) * E8
    agg = AggTrade("BTCUSDT", index, price, qty, index, index, ts_sec * S + 1_000, index % 2 == 0)
    return merge_agg_trade(empty_bar(ts_sec), agg)


def _fed(bars: list[Bar]) -> LiveFeatureEngine:
    engine = LiveFeatureEngine()
    for bar in bars:
        engine.on_bar(bar)
    return engine


def test_skipping_a_quiet_run_equals_feeding_its_empty_bars():
    start = START_US // S
    quoted = empty_bar(start)._replace(bid_price_e8=29_999 * E8, ask_price_e8=30_001 * E8)
    history = [quoted, *(_trade_bar(start + i, i) for i in range(1, 80))]
    history += [empty_bar(start + 80 + i) for i in range(60)]  # the longest window, quiet
    fed, skipped = _fed(history), _fed(history)
    through = start + 140 + 500
    for second in range(start + 140, through + 1):
        fed.on_bar(empty_bar(second))
    skipped.skip_to(through)

    assert repr(vars(skipped)) == repr(vars(fed))  # all the engine keeps, NaN included
    for index in range(70):  # and so every vector after the run, bit for bit
        bar = _trade_bar(through + 1 + index, 100 + index)
        assert same_bits(skipped.on_bar(bar), fed.on_bar(bar))


def test_skipping_is_refused_unless_the_longest_window_was_quiet():
    start = START_US // S
    with pytest.raises(ValueError, match="no bar fed"):
        LiveFeatureEngine().skip_to(start)
    history = [_trade_bar(start, 0), *(empty_bar(start + 1 + i) for i in range(59))]
    engine = _fed(history)
    with pytest.raises(ValueError, match="not all without trades"):
        engine.skip_to(start + 1_000)
    assert engine.ts_sec == start + 59
    engine.on_bar(empty_bar(start + 60))
    engine.skip_to(start + 1_000)
    assert engine.ts_sec == start + 1_000
