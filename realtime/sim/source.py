"""What the local exchange plays: a market source, one slice of time-ordered events at a time.

A source is either the seeded generator (``realtime.sim.market_model``) or a recorded capture
(``realtime.sim.capture_replay``). The exchange does the rest from these events alone: it
keeps the trade tape (REST, archive files), applies the diffs to its own book (REST depth,
``@depth20``), and turns every event into SBE frames. So a source only has to say what
happened, in Binance's own terms:

- ``TradeBatch``: one match of one taker order at one transact time. Its trades have
  consecutive ids; runs of equal price inside a batch are one aggregate trade, which is
  exactly Binance's rule (same taker order, same price, same time).
- ``DepthDiff``: the net change of the book over one diff interval, ``U``..``u`` covering
  every book update id of the interval, absolute quantities, ``U == previous u + 1``.
- ``BestBidAsk``: the top of the book after the update ``book_update_id``.

Events in a slice, and slices one after another, are in non-decreasing event time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from realtime.market.events import BestBidAsk, DepthDiff, DepthSnapshot, TradeBatch

SourceEvent = TradeBatch | BestBidAsk | DepthDiff


class MarketSource(Protocol):
    """A market history, produced forward in time; deterministic for its inputs."""

    @property
    def symbol(self) -> str:
        """Upper-case symbol, e.g. ``BTCUSDT``."""
        ...

    @property
    def first_agg_trade_id(self) -> int:
        """The aggregate trade id the exchange gives the source's first aggregate trade."""
        ...

    def initial_book(self) -> DepthSnapshot:
        """The book before the first event; ``last_update_id`` is the first diff's ``U - 1``.

        Empty when the source does not know it (a capture without a REST snapshot).
        """
        ...

    def next_events(self) -> Sequence[SourceEvent] | None:
        """The next slice of events in time order, or ``None`` once the source is exhausted.

        A slice may be empty (a quiet stretch); callers keep asking.
        """
        ...
