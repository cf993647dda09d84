"""A frame as a JSON-ready dict: header, wire exponents and decoded fields (for tools and logs)."""

from __future__ import annotations

from typing import Any

from realtime.binance.sbe.decode import decode, read_header, wire_exponents
from realtime.binance.sbe.layout import MESSAGES
from realtime.market.events import BestBidAsk, DepthDiff, DepthSnapshot, PriceLevel, TradeBatch


def describe_frame(frame: bytes) -> dict[str, Any]:
    """Decode ``frame`` and return its header and fields; ids, times (us) and ``*_e8`` as ints.

    Raises the decoder's ``SbeDecodeError`` for a bad frame.
    """
    message = decode(frame)
    header = read_header(frame)
    price_exponent, qty_exponent = wire_exponents(frame, header)
    described: dict[str, Any] = {
        "template_id": header.template_id,
        "message": MESSAGES[header.template_id].name,
        "schema_id": header.schema_id,
        "version": header.version,
        "block_length": header.block_length,
        "frame_bytes": len(frame),
        "price_exponent": price_exponent,
        "qty_exponent": qty_exponent,
        "symbol": message.symbol,
        "event_time_us": message.event_time_us,
    }
    if isinstance(message, TradeBatch):
        described["transact_time_us"] = message.transact_time_us
        described["trades"] = [
            {
                "trade_id": trade.trade_id,
                "price_e8": trade.price_e8,
                "qty_e8": trade.qty_e8,
                "is_buyer_maker": trade.is_buyer_maker,
                "is_best_match": trade.is_best_match,
            }
            for trade in message.trades
        ]
    elif isinstance(message, BestBidAsk):
        described.update(
            book_update_id=message.book_update_id,
            bid_price_e8=message.bid_price_e8,
            bid_qty_e8=message.bid_qty_e8,
            ask_price_e8=message.ask_price_e8,
            ask_qty_e8=message.ask_qty_e8,
        )
    elif isinstance(message, DepthSnapshot):
        described.update(
            book_update_id=message.last_update_id,
            bids=_levels(message.bids),
            asks=_levels(message.asks),
        )
    elif isinstance(message, DepthDiff):
        described.update(
            first_book_update_id=message.first_update_id,
            last_book_update_id=message.last_update_id,
            bids=_levels(message.bids),
            asks=_levels(message.asks),
        )
    return described


def _levels(levels: tuple[PriceLevel, ...]) -> list[dict[str, int]]:
    return [{"price_e8": price, "qty_e8": qty} for price, qty in levels]
