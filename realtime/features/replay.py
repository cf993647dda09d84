"""Replay a stored stream through the live path and compare it with the batch path.

The live path here is the service's: events in time order into ``BarBuilder``, closed bars
into ``LiveFeatureEngine``. The comparison is on float64 bit patterns, so NaN equals NaN
and -0.0 differs from 0.0; the report names the first differing second and feature.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from realtime.features.bars import BarBuilder, Bars, bars_from_tables
from realtime.features.engine import FEATURES, LiveFeatureEngine, batch_features
from realtime.market.events import BestBidAsk, Trade


@dataclass(frozen=True)
class Mismatch:
    ts_sec: int
    feature: str
    batch_value: float
    live_value: float


@dataclass(frozen=True)
class ParityReport:
    seconds: int
    features: int
    trades: int
    quotes: int
    equal: bool
    first_mismatch: Mismatch | None
    mismatched_values: int

    def summary(self) -> str:
        if self.equal:
            return (
                f"bit-for-bit equal: {self.seconds} seconds x {self.features} features "
                f"({self.trades} trades, {self.quotes} quotes)"
            )
        first = self.first_mismatch
        return (
            f"{self.mismatched_values} values differ; first at second {first.ts_sec}, "
            f"{first.feature}: batch {first.batch_value!r}, live {first.live_value!r}"
        )


def live_features(
    trades: pa.Table, quotes: pa.Table | None = None, symbol: str = "BTCUSDT"
) -> tuple[Bars, np.ndarray]:
    """Feed stored events through the live path; return its bars and feature vectors."""
    builder = BarBuilder()
    engine = LiveFeatureEngine()
    bars, vectors = [], []
    for event in _events_in_time_order(trades, quotes, symbol):
        closed = builder.add_trade(event) if isinstance(event, Trade) else builder.add_quote(event)
        for bar in closed:
            bars.append(bar)
            vectors.append(engine.on_bar(bar))
    if builder.open_sec is not None:
        for bar in builder.close_through(builder.open_sec):
            bars.append(bar)
            vectors.append(engine.on_bar(bar))
    if builder.late_events:
        raise ValueError(f"{builder.late_events} events arrived after their second closed")
    return Bars.from_rows(bars), np.array(vectors, dtype=np.float64).reshape(-1, len(FEATURES))


def compare(
    batch: np.ndarray, live: np.ndarray, start_sec: int, names: tuple[str, ...] = FEATURES
) -> tuple[Mismatch | None, int]:
    """The first differing (second, feature) by bit pattern, and how many values differ."""
    if batch.shape != live.shape:
        raise ValueError(f"batch has shape {batch.shape}, live {live.shape}")
    differ = batch.view(np.uint64) != live.view(np.uint64)
    count = int(differ.sum())
    if not count:
        return None, 0
    row, column = np.argwhere(differ)[0]
    return Mismatch(
        start_sec + int(row), names[column], float(batch[row, column]), float(live[row, column])
    ), count


def replay_parity(trades: pa.Table, quotes: pa.Table | None = None) -> ParityReport:
    """Batch and live features over the same stored events, compared bit for bit."""
    batch_bars = bars_from_tables(trades, quotes)
    batch = batch_features(batch_bars)
    live_bars, live = live_features(trades, quotes)
    if live_bars.start_sec != batch_bars.start_sec or len(live_bars) != len(batch_bars):
        raise ValueError("the live and batch paths cover different seconds")
    first, count = compare(batch, live, batch_bars.start_sec)
    return ParityReport(
        seconds=len(batch_bars),
        features=len(FEATURES),
        trades=trades.num_rows,
        quotes=quotes.num_rows if quotes is not None else 0,
        equal=first is None,
        first_mismatch=first,
        mismatched_values=count,
    )


def trade_events(trades: pa.Table, symbol: str = "BTCUSDT") -> Iterator[Trade]:
    """A stored ``TRADES`` table as the ``Trade`` events the live decoder produces."""
    columns = (
        trades["trade_id"].to_pylist(),
        trades["price_e8"].to_pylist(),
        trades["qty_e8"].to_pylist(),
        trades["transact_time"].cast(pa.int64()).to_pylist(),
        trades["is_buyer_maker"].to_pylist(),
    )
    for trade_id, price, qty, time_us, maker in zip(*columns, strict=True):
        yield Trade(symbol, trade_id, price, qty, maker, time_us, time_us)


def quote_events(quotes: pa.Table, symbol: str = "BTCUSDT") -> Iterator[BestBidAsk]:
    """A stored ``BEST_BID_ASK`` table as ``BestBidAsk`` events."""
    columns = (
        quotes["event_time"].cast(pa.int64()).to_pylist(),
        quotes["book_update_id"].to_pylist(),
        quotes["bid_price_e8"].to_pylist(),
        quotes["bid_qty_e8"].to_pylist(),
        quotes["ask_price_e8"].to_pylist(),
        quotes["ask_qty_e8"].to_pylist(),
    )
    for time_us, update_id, bid, bid_qty, ask, ask_qty in zip(*columns, strict=True):
        yield BestBidAsk(symbol, time_us, update_id, bid, bid_qty, ask, ask_qty)


def _events_in_time_order(
    trades: pa.Table, quotes: pa.Table | None, symbol: str
) -> Iterator[Trade | BestBidAsk]:
    """Trades and quotes merged by time; on equal times trades come first, each in stored order."""
    if quotes is None:
        yield from trade_events(trades, symbol)
        return
    keyed_trades = ((trade.transact_time_us, 0, trade) for trade in trade_events(trades, symbol))
    keyed_quotes = ((quote.event_time_us, 1, quote) for quote in quote_events(quotes, symbol))
    merged = heapq.merge(keyed_trades, keyed_quotes, key=lambda item: item[:2])
    yield from (event for _, _, event in merged)
