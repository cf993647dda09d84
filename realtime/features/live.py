"""The live path of contract v2 as the service runs it: market events in, feature vectors out.

Trades and best bid/asks build the trade ``Bar``s; depth diffs and REST snapshots build the
``BookBar``s. The grid is the trade bars' (it starts at the first trade or best bid/ask):
before an event of second ``s`` is applied, both builders are closed through ``s - 1``, so
each closed second has both views and its vector is computed at once. A second with no
book yet (the depth stream starts later, or never) has an invalid book bar.
"""

from __future__ import annotations

from realtime.features.bars import US_PER_SECOND, BarBuilder
from realtime.features.book_bars import BookBarBuilder, ReceivedSnapshot, invalid_bar
from realtime.features.engine_v2 import LiveFeatureEngineV2
from realtime.market.events import BestBidAsk, DepthDiff, Trade

LiveEvent = Trade | BestBidAsk | DepthDiff | ReceivedSnapshot


def event_time_us(event: LiveEvent) -> int:
    """The time that places an event on the grid (``schema_v2.json``, ``grid``)."""
    if isinstance(event, Trade):
        return event.transact_time_us
    if isinstance(event, ReceivedSnapshot):
        return event.received_us
    return event.event_time_us


def event_second(event: LiveEvent) -> int:
    """The grid second an event belongs to."""
    return event_time_us(event) // US_PER_SECOND


class LiveFeaturesV2:
    """One symbol's contract-v2 features from its events, in arrival order."""

    def __init__(self, symbol: str) -> None:
        self.bars = BarBuilder()
        self.book = BookBarBuilder(symbol)
        self.engine = LiveFeatureEngineV2()

    def on_event(self, event: LiveEvent) -> list[tuple[int, list[float]]]:
        """Apply one event; return ``(ts_sec, vector)`` of every second it closed."""
        closed = self.close_through(event_second(event) - 1)
        if isinstance(event, Trade):
            self.bars.add_trade(event)
        elif isinstance(event, BestBidAsk):
            self.bars.add_quote(event)
        elif isinstance(event, DepthDiff):
            self.book.add_diff(event)
        else:
            self.book.add_snapshot(event.snapshot, event.received_us)
        return closed

    def close_through(self, ts_sec: int) -> list[tuple[int, list[float]]]:
        """Close every second up to ``ts_sec`` (time passed; also at the end of a replay)."""
        book_bars = {bar.ts_sec: bar for bar in self.book.close_through(ts_sec)}
        return [
            (
                bar.ts_sec,
                self.engine.on_bar(bar, book_bars.get(bar.ts_sec) or invalid_bar(bar.ts_sec)),
            )
            for bar in self.bars.close_through(ts_sec)
        ]
