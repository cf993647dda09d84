"""Normalised market events: exchange facts in fixed point, independent of the wire format.

Every source (SBE stream, REST, archive CSV, the local exchange) produces these types, so
the book, the bars and the features never see a wire format. Prices and quantities are
exact e8 mantissas, times are microseconds since the epoch (UTC).

They are ``NamedTuple``s: immutable and hashable, and about three times cheaper to build
than frozen dataclasses, which matters at a million decoded messages a second.
"""

from __future__ import annotations

from typing import NamedTuple

PriceLevel = tuple[int, int]
"""One book level: ``(price_e8, qty_e8)``; ``qty_e8 == 0`` in a diff removes the level."""


class Trade(NamedTuple):
    """One raw trade (SBE ``@trade``, REST ``trades``/``historicalTrades``, archive ``trades``)."""

    symbol: str
    trade_id: int
    price_e8: int
    qty_e8: int
    is_buyer_maker: bool
    transact_time_us: int
    """Matching-engine time of the trade."""
    event_time_us: int
    """When the exchange published the event; equal to ``transact_time_us`` for REST trades."""
    is_best_match: bool = True


class TradeBatch(NamedTuple):
    """The trades of one SBE ``TradesStreamEvent``: one match, one transact time, n >= 1 trades."""

    symbol: str
    event_time_us: int
    transact_time_us: int
    trades: tuple[Trade, ...]


class AggTrade(NamedTuple):
    """One aggregate trade: fills of one taker order at one price and time, quantities summed."""

    symbol: str
    agg_trade_id: int
    price_e8: int
    qty_e8: int
    first_trade_id: int
    last_trade_id: int
    transact_time_us: int
    is_buyer_maker: bool
    is_best_match: bool = True


class BestBidAsk(NamedTuple):
    """Top of book (SBE ``@bestBidAsk``). ``book_update_id`` may jump: Binance culls under load."""

    symbol: str
    event_time_us: int
    book_update_id: int
    bid_price_e8: int
    bid_qty_e8: int
    ask_price_e8: int
    ask_qty_e8: int


class DepthDiff(NamedTuple):
    """Book changes over ``[first_update_id, last_update_id]``; quantities are absolute."""

    symbol: str
    event_time_us: int
    first_update_id: int
    last_update_id: int
    bids: tuple[PriceLevel, ...]
    asks: tuple[PriceLevel, ...]


class DepthSnapshot(NamedTuple):
    """A picture of the top of the book (SBE ``@depth20``) or of the whole book (REST ``depth``).

    Levels are best first. ``event_time_us`` is ``None`` for REST snapshots, which carry no time.
    """

    symbol: str
    event_time_us: int | None
    last_update_id: int
    bids: tuple[PriceLevel, ...]
    asks: tuple[PriceLevel, ...]


MarketEvent = Trade | TradeBatch | AggTrade | BestBidAsk | DepthDiff | DepthSnapshot
