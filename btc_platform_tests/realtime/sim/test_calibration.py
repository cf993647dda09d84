"""Market statistics, and the generated market held against the real 2023-04-05 capture."""

from __future__ import annotations

from pathlib import Path

import pytest

from realtime.market.events import BestBidAsk, DepthDiff, Trade, TradeBatch
from realtime.sim.calibration import (
    MarketStatistics,
    NoEvents,
    calibration_table,
    market_statistics,
    render_comparison,
)
from realtime.sim.capture_replay import CaptureReplay
from realtime.sim.market_model import MarketModel, MarketParams

CAPTURE = (
    Path(__file__).parents[2]
    / "fixtures"
    / "binance_capture_2023-04-05"
    / "capture_json_stream.dat.gz"
)
T0 = 1_680_652_800_000_000
E8 = 10**8
BTC = E8


def _price(usdt: float) -> int:
    return round(usdt * 100) * 1_000_000


def _top(time_us: int, bid: float, ask: float, bid_qty: int = BTC) -> BestBidAsk:
    return BestBidAsk("BTCUSDT", time_us, 0, _price(bid), bid_qty, _price(ask), 2 * BTC)


def _batch(time_us: int, is_buyer_maker: bool, fills: list[tuple[float, int]]) -> TradeBatch:
    trades = tuple(
        Trade("BTCUSDT", n, _price(price), qty, is_buyer_maker, time_us, time_us)
        for n, (price, qty) in enumerate(fills)
    )
    return TradeBatch("BTCUSDT", time_us, time_us, trades)


def _hand_made_market() -> list:
    return [
        _top(T0, 100.00, 100.01),
        # A buy taker: two maker orders at 100.01, one at 100.02.
        _batch(
            T0 + 100_000, False, [(100.01, BTC // 10), (100.01, BTC // 5), (100.02, 3 * BTC // 10)]
        ),
        _top(T0 + 100_000, 100.00, 100.03),
        DepthDiff(
            "BTCUSDT",
            T0 + 199_999,
            10,
            14,
            (),
            ((_price(100.01), 0), (_price(100.02), 0), (_price(100.03), 5 * BTC)),
        ),
        _batch(T0 + 2_500_000, True, [(100.00, BTC // 20)]),
        _top(T0 + 2_500_000, 100.00, 100.02, bid_qty=95 * BTC // 100),
        DepthDiff("BTCUSDT", T0 + 2_599_999, 15, 15, ((_price(100.00), 95 * BTC // 100),), ()),
        _top(T0 + 4_000_000, 100.00, 100.01),
    ]


def test_statistics_of_a_hand_made_market():
    stats = market_statistics(_hand_made_market())
    assert stats.duration_s == 4.0
    assert stats.trades_per_s == 1.0
    assert stats.best_bid_ask_per_s == 1.0
    assert stats.diffs_per_s == 0.5
    assert stats.update_ids_per_s == 1.5  # ids 10..15
    assert (stats.levels_per_diff_median, stats.levels_per_diff_mean) == (2.0, 2.0)
    assert stats.removal_share == 0.5
    assert stats.spread_1_tick_share == 0.5
    assert stats.spread_2_ticks_share == stats.spread_3_ticks_share == 0.25
    assert stats.trade_qty_p10 == 0.05
    assert stats.trade_qty_max == 0.3
    assert stats.trades_per_agg_trade == 4 / 3  # runs of equal price within a batch
    assert stats.trades_per_taker_order == 2.0
    assert stats.multi_level_order_share == 0.5
    assert stats.max_levels_per_order == 2
    # Trades per second [3, 0, 1, 0]: mean 1, variance 1.5.
    assert stats.trade_count_dispersion == 1.5
    assert stats.quiet_second_share == 0.5
    assert stats.buy_taker_share == 0.75
    assert stats.best_bid_qty_p50 == 1.0
    assert stats.book_levels_per_side is None
    assert stats.book_span_pct is None


def test_no_statistics_without_events():
    with pytest.raises(NoEvents):
        market_statistics([])
    with pytest.raises(NoEvents):
        market_statistics([event for event in _hand_made_market() if type(event) is not DepthDiff])


def test_comparison_table_has_a_row_per_measure():
    stats = market_statistics(_hand_made_market())
    table = render_comparison(stats, stats._replace(trades_per_s=2.5), "left", "right")
    lines = table.splitlines()
    assert lines[0] == "| measure | left | right |"
    assert "| trades / s | 1.00 | 2.50 |" in lines
    assert "| book levels per side | n/a | n/a |" in lines
    assert len(lines) == 2 + len(MarketStatistics._fields)


@pytest.fixture(scope="module")
def real() -> MarketStatistics:
    replay = CaptureReplay(CAPTURE)
    return market_statistics(replay.events(), replay.initial_book())


@pytest.fixture(scope="module")
def generated() -> MarketStatistics:
    model = MarketModel(MarketParams())
    events = [event for _ in range(600) for event in model.next_events()]
    return market_statistics(events, model.initial_book())


RATE_FACTOR = 1.5
"""Rates and sizes: the generated market within a factor of 1.5 of the capture."""


def _within_factor(generated: float, real: float, factor: float) -> bool:
    return real / factor <= generated <= real * factor


@pytest.mark.parametrize(
    ("measure", "factor"),
    [
        ("trades_per_s", RATE_FACTOR),
        ("best_bid_ask_per_s", RATE_FACTOR),
        ("diffs_per_s", RATE_FACTOR),
        ("update_ids_per_s", RATE_FACTOR),
        ("levels_per_diff_median", RATE_FACTOR),
        ("levels_per_diff_mean", RATE_FACTOR),
        ("levels_per_diff_p90", RATE_FACTOR),
        ("trade_qty_p10", RATE_FACTOR),
        ("trade_qty_p50", RATE_FACTOR),
        ("trade_qty_p90", RATE_FACTOR),
        ("trade_qty_p99", RATE_FACTOR),
        ("trades_per_agg_trade", 1.15),
        ("trades_per_taker_order", 1.25),
        ("multi_level_order_share", 2.0),
        ("trade_count_dispersion", 2.0),
        ("best_bid_qty_p50", 2.0),
        ("mid_return_10s_bps", 2.0),
    ],
)
def test_generated_market_is_within_a_factor_of_the_capture(real, generated, measure, factor):
    assert _within_factor(getattr(generated, measure), getattr(real, measure), factor), (
        f"{measure}: generated {getattr(generated, measure):.4g}, "
        f"capture {getattr(real, measure):.4g}, tolerance x{factor}"
    )


def test_generated_shares_are_close_to_the_capture(real, generated):
    assert abs(generated.spread_1_tick_share - real.spread_1_tick_share) < 0.04
    for share in (generated.spread_2_ticks_share, generated.spread_3_ticks_share):
        assert 0.001 < share < 0.03  # rare, like the capture's ~0.7 % each
    assert generated.spread_p99_ticks > 10  # and occasionally a wide gap
    assert abs(generated.removal_share - real.removal_share) < 0.1
    assert abs(generated.quiet_second_share - real.quiet_second_share) < 0.03
    # Symmetric by default: the capture's 0.43 is one sample of a one-sided stretch.
    assert abs(generated.buy_taker_share - 0.5) < 0.05


def test_generated_book_is_a_few_hundred_levels_over_about_one_percent(generated):
    assert generated.book_levels_per_side is not None
    assert generated.book_span_pct is not None
    assert 200 < generated.book_levels_per_side < 400
    assert 0.7 < generated.book_span_pct < 1.5


def test_calibration_table_puts_the_capture_beside_the_seeded_market():
    table = calibration_table(CAPTURE, seed=3, minutes=1)
    lines = table.splitlines()
    assert lines[0] == "| measure | real capture | generated (seed 3) |"
    assert "| duration (s) | 415 | 60 |" in lines
