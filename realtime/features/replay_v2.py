"""Contract-v2 parity: a recorded market through the live path and through the batch path.

The input is what the live service records: trades, best bid/asks, depth diffs and the REST
snapshots it anchored the book with, in arrival order. The live path takes them one at a
time (``LiveFeaturesV2``). The batch path takes them as stored: trades and best bid/asks as
tables into vectorised bars, the book events replayed into book bars, then
``batch_features_v2``. The vectors are compared by float64 bit pattern.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from realtime.features.bars import Bars, bars_from_tables
from realtime.features.book_bars import BookBars, ReceivedSnapshot, book_bars_from_events
from realtime.features.engine_v2 import FEATURES_V2, batch_features_v2
from realtime.features.live import LiveEvent, LiveFeaturesV2, event_second, event_time_us
from realtime.features.replay import Mismatch, compare
from realtime.market.arrow_schemas import BEST_BID_ASK, TRADES
from realtime.market.events import BestBidAsk, DepthDiff, DepthSnapshot, Trade, TradeBatch
from realtime.market.quote_qty import quote_qty_e8


@dataclass(frozen=True)
class RecordedMarket:
    """A recorded stretch of one symbol's market, in the shapes the lake stores."""

    symbol: str
    trades: pa.Table
    quotes: pa.Table
    book_events: list[DepthDiff | ReceivedSnapshot]
    events: list[LiveEvent]
    """Everything in arrival order, as the live path saw it."""

    @property
    def end_sec(self) -> int:
        return max(event_second(event) for event in self.events)


def recorded_market(
    symbol: str,
    source_events: Iterable[TradeBatch | Trade | BestBidAsk | DepthDiff | ReceivedSnapshot],
    initial_book: DepthSnapshot | None = None,
) -> RecordedMarket:
    """Record a stream of market events (a source's, a capture's) as ``RecordedMarket``.

    ``initial_book`` (a snapshot the book starts from) is recorded as received just before
    the first event, where a service would have fetched it.
    """
    events: list[LiveEvent] = []
    for event in source_events:
        if isinstance(event, TradeBatch):
            events.extend(event.trades)
        else:
            events.append(event)
    if initial_book is not None and events:
        events.insert(0, ReceivedSnapshot(event_time_us(events[0]), initial_book))
    trades = [e for e in events if isinstance(e, Trade)]
    quotes = [e for e in events if isinstance(e, BestBidAsk)]
    price = np.array([t.price_e8 for t in trades], dtype=np.int64)
    qty = np.array([t.qty_e8 for t in trades], dtype=np.int64)
    trade_table = pa.table(
        {
            "trade_id": pa.array([t.trade_id for t in trades], pa.int64()),
            "price_e8": price,
            "qty_e8": qty,
            "quote_qty_e8": np.asarray(quote_qty_e8(price, qty), dtype=np.int64),
            "transact_time": pa.array(
                [t.transact_time_us for t in trades], pa.timestamp("us", tz="UTC")
            ),
            "is_buyer_maker": pa.array([t.is_buyer_maker for t in trades], pa.bool_()),
            "is_best_match": pa.array([t.is_best_match for t in trades], pa.bool_()),
        },
        schema=TRADES,
    )
    quote_table = pa.table(
        {
            "event_time": pa.array([q.event_time_us for q in quotes], pa.timestamp("us", tz="UTC")),
            "book_update_id": pa.array([q.book_update_id for q in quotes], pa.int64()),
            "bid_price_e8": pa.array([q.bid_price_e8 for q in quotes], pa.int64()),
            "bid_qty_e8": pa.array([q.bid_qty_e8 for q in quotes], pa.int64()),
            "ask_price_e8": pa.array([q.ask_price_e8 for q in quotes], pa.int64()),
            "ask_qty_e8": pa.array([q.ask_qty_e8 for q in quotes], pa.int64()),
        },
        schema=BEST_BID_ASK,
    )
    book_events = [e for e in events if isinstance(e, DepthDiff | ReceivedSnapshot)]
    return RecordedMarket(symbol, trade_table, quote_table, book_events, events)


def batch_path(market: RecordedMarket) -> tuple[Bars, BookBars, np.ndarray]:
    """Stored tables → bars (vectorised), book events → book bars, then the v2 features."""
    quotes = market.quotes if market.quotes.num_rows else None
    bars = bars_from_tables(market.trades, quotes, end_sec=market.end_sec)
    book_bars = book_bars_from_events(
        market.book_events, symbol=market.symbol, start_sec=bars.start_sec, end_sec=market.end_sec
    )
    return bars, book_bars, batch_features_v2(bars, book_bars)


def live_path(market: RecordedMarket) -> tuple[list[int], np.ndarray]:
    """Every event through ``LiveFeaturesV2``; the seconds and vectors it produced."""
    live = LiveFeaturesV2(market.symbol)
    rows: list[tuple[int, list[float]]] = []
    for event in market.events:
        rows.extend(live.on_event(event))
    rows.extend(live.close_through(market.end_sec))
    if live.bars.late_events:
        raise ValueError(f"{live.bars.late_events} events arrived after their second closed")
    vectors = np.array([vector for _, vector in rows], dtype=np.float64)
    return [second for second, _ in rows], vectors.reshape(-1, len(FEATURES_V2))


@dataclass(frozen=True)
class ParityReportV2:
    seconds: int
    valid_book_seconds: int
    equal: bool
    first_mismatch: Mismatch | None
    mismatched_values: int


def replay_parity_v2(market: RecordedMarket) -> ParityReportV2:
    """Batch and live contract-v2 vectors over the same recorded market, bit for bit."""
    bars, book_bars, batch = batch_path(market)
    seconds, live = live_path(market)
    if seconds != bars.ts_sec.tolist():
        raise ValueError("the live and batch paths cover different seconds")
    first, count = compare(batch, live, bars.start_sec, FEATURES_V2)
    return ParityReportV2(
        seconds=len(bars),
        valid_book_seconds=int(book_bars.valid.sum()),
        equal=first is None,
        first_mismatch=first,
        mismatched_values=count,
    )


__all__: Sequence[str] = (
    "ParityReportV2",
    "RecordedMarket",
    "batch_path",
    "live_path",
    "recorded_market",
    "replay_parity_v2",
)
