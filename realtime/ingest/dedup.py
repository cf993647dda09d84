"""De-duplication by id, per stream: what lets two connections overlap without double events.

Each stream's ids only grow on the exchange (trades by ``trade_id``, diffs and ``@depth20``
snapshots by ``last_update_id``, best bid/asks by ``book_update_id``), so a per-stream
monotonic filter is exact: an event at or below the last accepted id was already published
(a repeat on the same connection, or the overlap of a replacement connection). Best bid/ask
ids may jump (Binance culls under load); that is not a gap, and the filter does not care.
"""

from __future__ import annotations

from typing import NamedTuple

from realtime.binance.sbe import SbeMessage
from realtime.market.events import BestBidAsk, DepthDiff, DepthSnapshot, Trade, TradeBatch

TRADE = "trade"
BEST_BID_ASK = "bestBidAsk"
DEPTH = "depth"
DEPTH20 = "depth20"
STREAMS = (TRADE, BEST_BID_ASK, DEPTH, DEPTH20)
"""The SBE stream kinds, as in the stream names (``<symbol>@<kind>``)."""

BUS_KIND = {TRADE: "trade", BEST_BID_ASK: "bba", DEPTH: "depth", DEPTH20: "depth"}
"""Which bus stream each SBE stream feeds."""

DedupEvent = Trade | BestBidAsk | DepthDiff | DepthSnapshot

_STREAM_OF_TYPE: dict[type, str] = {
    TradeBatch: TRADE,
    BestBidAsk: BEST_BID_ASK,
    DepthDiff: DEPTH,
    DepthSnapshot: DEPTH20,
}
"""The decoder's message types: one dict lookup per message, on the per-frame path."""


def stream_of(message: SbeMessage) -> str:
    """The stream kind a decoded message came from (each template has one stream)."""
    return _STREAM_OF_TYPE[type(message)]


def flatten(batch: TradeBatch) -> tuple[Trade, ...]:
    """The batch's trades in order, each carrying the batch's transact time."""
    transact_us = batch.transact_time_us
    if all(trade.transact_time_us == transact_us for trade in batch.trades):
        return batch.trades
    return tuple(trade._replace(transact_time_us=transact_us) for trade in batch.trades)


class Admitted(NamedTuple):
    """What one message contributed: its stream, the events not seen before, the repeats."""

    stream: str
    events: tuple[DedupEvent, ...]
    duplicates: int


class Deduplicator:
    """One monotonic id filter per stream."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}

    def last_id(self, stream: str) -> int | None:
        """The highest id accepted on ``stream``, ``None`` before the first event."""
        return self._last.get(stream)

    def admit(self, message: SbeMessage) -> Admitted:
        """Split ``message`` into new events and repeats, and remember the new ids."""
        stream = stream_of(message)
        if stream == TRADE:
            trades = flatten(message)  # type: ignore[arg-type]
            last = self._last.get(TRADE)
            # A batch's ids are consecutive (one match), so its first id decides the usual case.
            if not trades or last is None or trades[0].trade_id > last:
                fresh = trades
            else:
                fresh = tuple(trade for trade in trades if trade.trade_id > last)
            if fresh:
                self._last[TRADE] = fresh[-1].trade_id
            return Admitted(TRADE, fresh, len(trades) - len(fresh))
        event_id = (
            message.book_update_id  # type: ignore[union-attr]
            if stream == BEST_BID_ASK
            else message.last_update_id  # type: ignore[union-attr]  # DepthDiff and DepthSnapshot
        )
        last = self._last.get(stream)
        if last is not None and event_id <= last:
            return Admitted(stream, (), 1)
        self._last[stream] = event_id
        return Admitted(stream, (message,), 0)
