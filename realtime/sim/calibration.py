"""Market statistics of any source's events, to hold the generator against a real capture.

``market_statistics`` reads one pass of ``TradeBatch``/``BestBidAsk``/``DepthDiff`` events
(from ``MarketModel`` or ``CaptureReplay`` alike) and measures what a user of the local
exchange notices: event rates, diff sizes, spread, trade sizes, how trades group, how
bursty they are. ``render_comparison`` lays two of them side by side in markdown, and
``calibration_table`` does it for a capture file and the seeded market (``btc-sim calibrate``).

Units: rates per second of event time, quantities in BTC (floats, for reading only),
spreads in ticks, shares in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from realtime.market.events import BestBidAsk, DepthDiff, DepthSnapshot, TradeBatch
from realtime.market.fixed_point import e8_to_float
from realtime.sim.synthetic_trades import TICK_E8

US_PER_S = 1_000_000
BOOK_SAMPLE_EVERY = 10
"""Book depth is sampled at every tenth diff boundary: counting levels is the slow part."""


class NoEvents(ValueError):
    """Statistics asked of an event stream without trades, tops or diffs."""


class MarketStatistics(NamedTuple):
    """What a market looks like over one stretch of events; ``None`` where not measurable."""

    duration_s: float
    trades_per_s: float
    best_bid_ask_per_s: float
    diffs_per_s: float
    update_ids_per_s: float
    levels_per_diff_median: float
    levels_per_diff_mean: float
    levels_per_diff_p90: float
    removal_share: float
    """Share of diff levels with quantity 0 (removed)."""
    spread_1_tick_share: float
    spread_2_ticks_share: float
    spread_3_ticks_share: float
    spread_p99_ticks: float
    """Shares and percentile over ``BestBidAsk`` events."""
    trade_qty_p10: float
    trade_qty_p50: float
    trade_qty_p90: float
    trade_qty_p99: float
    trade_qty_max: float
    trades_per_agg_trade: float
    trades_per_taker_order: float
    """Trades per ``TradeBatch``: one taker order each."""
    multi_level_order_share: float
    """Share of taker orders that fill at two price levels or more."""
    max_levels_per_order: int
    trade_count_dispersion: float
    """Variance over mean of per-second trade counts (1 for a Poisson process)."""
    quiet_second_share: float
    """Share of seconds without a trade."""
    buy_taker_share: float
    """Share of trades whose taker bought."""
    best_bid_qty_p50: float
    mid_return_10s_bps: float
    """Standard deviation of the 10-second log return of the mid, in basis points."""
    book_levels_per_side: float | None
    """Mean levels per side of the book replayed from the initial book; None without one."""
    book_span_pct: float | None
    """Mean distance from the best to the deepest level, in % of the price."""


def market_statistics(
    events: Iterable[TradeBatch | BestBidAsk | DepthDiff],
    initial_book: DepthSnapshot | None = None,
) -> MarketStatistics:
    """Measure one pass of source events; depth measures need a non-empty ``initial_book``."""
    trade_time_us: list[int] = []
    trade_qty_e8: list[int] = []
    trade_buy: list[bool] = []
    trades_per_order: list[int] = []
    levels_per_order: list[int] = []
    agg_trades = 0
    top_time_us: list[int] = []
    spread_ticks: list[int] = []
    bid_qty_e8: list[int] = []
    mid_e8: list[int] = []
    levels_per_diff: list[int] = []
    removals = 0
    first_update_id: int | None = None
    last_update_id = 0
    book = _SampledBook(initial_book)
    first_us: int | None = None
    last_us = 0
    for event in events:
        time_us = event.event_time_us
        if first_us is None or time_us < first_us:
            first_us = time_us
        last_us = max(last_us, time_us)
        if isinstance(event, TradeBatch):
            previous_price = None
            for trade in event.trades:
                trade_time_us.append(trade.transact_time_us)
                trade_qty_e8.append(trade.qty_e8)
                trade_buy.append(not trade.is_buyer_maker)
                if trade.price_e8 != previous_price:
                    agg_trades += 1
                    previous_price = trade.price_e8
            trades_per_order.append(len(event.trades))
            levels_per_order.append(len({trade.price_e8 for trade in event.trades}))
        elif isinstance(event, BestBidAsk):
            top_time_us.append(time_us)
            spread_ticks.append((event.ask_price_e8 - event.bid_price_e8) // TICK_E8)
            bid_qty_e8.append(event.bid_qty_e8)
            mid_e8.append((event.ask_price_e8 + event.bid_price_e8) // 2)
        elif isinstance(event, DepthDiff):
            if first_update_id is None:
                first_update_id = event.first_update_id
            last_update_id = event.last_update_id
            levels_per_diff.append(len(event.bids) + len(event.asks))
            removals += sum(1 for _, qty in event.bids if qty == 0)
            removals += sum(1 for _, qty in event.asks if qty == 0)
            book.apply(event, sample=len(levels_per_diff) % BOOK_SAMPLE_EVERY == 0)
    if first_us is None or first_update_id is None or not trade_qty_e8 or not spread_ticks:
        raise NoEvents("market statistics need trades, best bid/ask updates and depth diffs")
    duration_s = max(last_us - first_us, 1) / US_PER_S
    qty = np.array(trade_qty_e8, dtype=np.int64)
    spreads = np.array(spread_ticks, dtype=np.int64)
    levels = np.array(levels_per_diff, dtype=np.int64)
    whole_seconds = max(int(duration_s), 1)
    trade_seconds = (np.array(trade_time_us, dtype=np.int64) - first_us) // US_PER_S
    per_second = np.bincount(trade_seconds.clip(0), minlength=whole_seconds)[:whole_seconds]
    return MarketStatistics(
        duration_s=duration_s,
        trades_per_s=len(qty) / duration_s,
        best_bid_ask_per_s=len(spreads) / duration_s,
        diffs_per_s=len(levels) / duration_s,
        update_ids_per_s=(last_update_id - first_update_id + 1) / duration_s,
        levels_per_diff_median=float(np.median(levels)),
        levels_per_diff_mean=float(levels.mean()),
        levels_per_diff_p90=float(np.percentile(levels, 90)),
        removal_share=removals / max(int(levels.sum()), 1),
        spread_1_tick_share=float(np.mean(spreads == 1)),
        spread_2_ticks_share=float(np.mean(spreads == 2)),
        spread_3_ticks_share=float(np.mean(spreads == 3)),
        spread_p99_ticks=float(np.percentile(spreads, 99)),
        trade_qty_p10=_qty_percentile(qty, 10),
        trade_qty_p50=_qty_percentile(qty, 50),
        trade_qty_p90=_qty_percentile(qty, 90),
        trade_qty_p99=_qty_percentile(qty, 99),
        trade_qty_max=e8_to_float(int(qty.max())),
        trades_per_agg_trade=len(qty) / agg_trades,
        trades_per_taker_order=len(qty) / len(trades_per_order),
        multi_level_order_share=float(np.mean(np.array(levels_per_order) > 1)),
        max_levels_per_order=max(levels_per_order),
        trade_count_dispersion=float(per_second.var() / max(per_second.mean(), 1e-12)),
        quiet_second_share=float(np.mean(per_second == 0)),
        buy_taker_share=float(np.mean(trade_buy)),
        best_bid_qty_p50=_qty_percentile(np.array(bid_qty_e8, dtype=np.int64), 50),
        mid_return_10s_bps=_mid_return_std_bps(top_time_us, mid_e8, horizon_s=10),
        book_levels_per_side=book.mean_levels_per_side(),
        book_span_pct=book.mean_span_pct(),
    )


def _qty_percentile(qty_e8: np.ndarray, percent: float) -> float:
    return e8_to_float(int(np.percentile(qty_e8, percent, method="nearest")))


def _mid_return_std_bps(time_us: list[int], mid_e8: list[int], horizon_s: int) -> float:
    """Std of the log mid return over ``horizon_s``, the mid sampled each whole second."""
    times = np.array(time_us, dtype=np.int64)
    grid = np.arange(times[0] + US_PER_S, times[-1], US_PER_S)
    if len(grid) <= horizon_s + 1:
        return math.nan
    log_mid = np.log(np.array(mid_e8, dtype=np.float64))[np.searchsorted(times, grid) - 1]
    return float(np.std(log_mid[horizon_s:] - log_mid[:-horizon_s]) * 1e4)


class _SampledBook:
    """The book replayed from an initial snapshot and the diffs, its depth sampled as it goes."""

    def __init__(self, initial_book: DepthSnapshot | None) -> None:
        self.enabled = initial_book is not None and bool(initial_book.bids or initial_book.asks)
        self.bids: dict[int, int] = dict(initial_book.bids) if initial_book else {}
        self.asks: dict[int, int] = dict(initial_book.asks) if initial_book else {}
        self.level_counts: list[int] = []
        self.spans_pct: list[float] = []

    def apply(self, diff: DepthDiff, sample: bool) -> None:
        if not self.enabled:
            return
        for levels, side in ((diff.bids, self.bids), (diff.asks, self.asks)):
            for price_e8, qty_e8 in levels:
                if qty_e8:
                    side[price_e8] = qty_e8
                else:
                    side.pop(price_e8, None)
        if sample and self.bids and self.asks:
            self.level_counts.extend((len(self.bids), len(self.asks)))
            best_bid, best_ask = max(self.bids), min(self.asks)
            self.spans_pct.append(100 * (best_bid - min(self.bids)) / best_bid)
            self.spans_pct.append(100 * (max(self.asks) - best_ask) / best_ask)

    def mean_levels_per_side(self) -> float | None:
        return float(np.mean(self.level_counts)) if self.level_counts else None

    def mean_span_pct(self) -> float | None:
        return float(np.mean(self.spans_pct)) if self.spans_pct else None


_ROWS: tuple[tuple[str, str, str], ...] = (
    ("duration_s", "duration (s)", "{:.0f}"),
    ("trades_per_s", "trades / s", "{:.2f}"),
    ("best_bid_ask_per_s", "best bid/ask updates / s", "{:.1f}"),
    ("diffs_per_s", "depth diffs / s", "{:.2f}"),
    ("update_ids_per_s", "book update ids / s", "{:.0f}"),
    ("levels_per_diff_median", "levels per diff, median", "{:.1f}"),
    ("levels_per_diff_mean", "levels per diff, mean", "{:.1f}"),
    ("levels_per_diff_p90", "levels per diff, p90", "{:.1f}"),
    ("removal_share", "diff levels removed (qty 0)", "{:.2f}"),
    ("spread_1_tick_share", "spread = 1 tick", "{:.3f}"),
    ("spread_2_ticks_share", "spread = 2 ticks", "{:.3f}"),
    ("spread_3_ticks_share", "spread = 3 ticks", "{:.3f}"),
    ("spread_p99_ticks", "spread p99 (ticks)", "{:.0f}"),
    ("trade_qty_p10", "trade qty p10 (BTC)", "{:.5f}"),
    ("trade_qty_p50", "trade qty p50 (BTC)", "{:.5f}"),
    ("trade_qty_p90", "trade qty p90 (BTC)", "{:.4f}"),
    ("trade_qty_p99", "trade qty p99 (BTC)", "{:.3f}"),
    ("trade_qty_max", "trade qty max (BTC)", "{:.2f}"),
    ("trades_per_agg_trade", "trades per aggregate trade", "{:.2f}"),
    ("trades_per_taker_order", "trades per taker order", "{:.2f}"),
    ("multi_level_order_share", "taker orders over 2+ levels", "{:.3f}"),
    ("max_levels_per_order", "most levels one order took", "{}"),
    ("trade_count_dispersion", "per-second trade count var/mean", "{:.1f}"),
    ("quiet_second_share", "seconds without a trade", "{:.3f}"),
    ("buy_taker_share", "buy-taker share of trades", "{:.2f}"),
    ("best_bid_qty_p50", "best bid qty p50 (BTC)", "{:.2f}"),
    ("mid_return_10s_bps", "10 s mid return std (bps)", "{:.2f}"),
    ("book_levels_per_side", "book levels per side", "{:.0f}"),
    ("book_span_pct", "book depth from best (% of price)", "{:.2f}"),
)


def render_comparison(
    real: MarketStatistics,
    generated: MarketStatistics,
    real_label: str = "real capture",
    generated_label: str = "generated",
) -> str:
    """A markdown table: one row per measure, the two sources side by side."""
    lines = [f"| measure | {real_label} | {generated_label} |", "| --- | ---: | ---: |"]
    for field, label, spec in _ROWS:
        cells = [_format(getattr(stats, field), spec) for stats in (real, generated)]
        lines.append(f"| {label} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines) + "\n"


def _format(value: float | None, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return spec.format(value)


def calibration_table(capture: str | Path, *, seed: int = 7, minutes: float = 10.0) -> str:
    """The docs page's table: a recorded capture beside ``minutes`` of the seeded market."""
    from realtime.sim.capture_replay import CaptureReplay
    from realtime.sim.market_model import MarketModel, MarketParams

    replay = CaptureReplay(capture)
    real = market_statistics(replay.events(), replay.initial_book())
    model = MarketModel(MarketParams(seed=seed))
    slices = round(minutes * 60 * US_PER_S / model.params.slice_us)
    generated = market_statistics(
        (event for _ in range(slices) for event in model.next_events()), model.initial_book()
    )
    return render_comparison(real, generated, generated_label=f"generated (seed {seed})")
