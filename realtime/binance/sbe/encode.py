"""Encode normalised events as SBE stream frames, byte for byte as Binance sends them.

The local exchange serves these frames and the tests round-trip through them. Events hold
e8 mantissas; a frame may carry other exponents (Binance chooses them per message), so
values are rescaled to the requested exponents and refused if that would lose digits.
``root_padding`` and ``entry_padding`` append zero bytes to the blocks, as a newer
schema version that appends fields would; decoders must skip them using the wire lengths.
"""

from __future__ import annotations

from realtime.binance.sbe.errors import EncodeError
from realtime.binance.sbe.layout import (
    DIMENSIONS,
    E8,
    HEADER,
    MESSAGES,
    SCHEMA_ID,
    SCHEMA_VERSION,
    Template,
    block_struct,
)
from realtime.market.events import BestBidAsk, DepthDiff, DepthSnapshot, PriceLevel, TradeBatch
from realtime.market.fixed_point import FixedPointError, rescale_from_e8

_HEADER = block_struct(HEADER)
_GROUP_SIZE = block_struct(DIMENSIONS["groupSizeEncoding"])
_GROUP_SIZE16 = block_struct(DIMENSIONS["groupSize16Encoding"])
_TRADES = MESSAGES[Template.TRADES]
_TRADES_ROOT = block_struct(_TRADES.fields)
_TRADE_ENTRY = block_struct(_TRADES.groups[0].fields)
_BEST_BID_ASK_ROOT = block_struct(MESSAGES[Template.BEST_BID_ASK].fields)
_DEPTH_SNAPSHOT_ROOT = block_struct(MESSAGES[Template.DEPTH_SNAPSHOT].fields)
_DEPTH_DIFF_ROOT = block_struct(MESSAGES[Template.DEPTH_DIFF].fields)
_LEVEL = block_struct(MESSAGES[Template.DEPTH_DIFF].groups[0].fields)


def encode(
    message: TradeBatch | BestBidAsk | DepthSnapshot | DepthDiff,
    *,
    price_exponent: int = E8,
    qty_exponent: int = E8,
    version: int = SCHEMA_VERSION,
    root_padding: int = 0,
    entry_padding: int = 0,
) -> bytes:
    """Encode one message as a complete frame: header, root block, groups, symbol."""
    if isinstance(message, TradeBatch):
        template_id = Template.TRADES
        root = _TRADES_ROOT.pack(
            message.event_time_us, message.transact_time_us, price_exponent, qty_exponent
        )
        entries = b"".join(
            _TRADE_ENTRY.pack(
                trade.trade_id,
                _mantissa(trade.price_e8, price_exponent),
                _mantissa(trade.qty_e8, qty_exponent),
                1 if trade.is_buyer_maker else 0,
            )
            + bytes(entry_padding)
            for trade in message.trades
        )
        groups = _GROUP_SIZE.pack(_TRADE_ENTRY.size + entry_padding, len(message.trades)) + entries
    elif isinstance(message, BestBidAsk):
        template_id = Template.BEST_BID_ASK
        root = _BEST_BID_ASK_ROOT.pack(
            message.event_time_us,
            message.book_update_id,
            price_exponent,
            qty_exponent,
            _mantissa(message.bid_price_e8, price_exponent),
            _mantissa(message.bid_qty_e8, qty_exponent),
            _mantissa(message.ask_price_e8, price_exponent),
            _mantissa(message.ask_qty_e8, qty_exponent),
        )
        groups = b""
    elif isinstance(message, DepthSnapshot):
        template_id = Template.DEPTH_SNAPSHOT
        root = _DEPTH_SNAPSHOT_ROOT.pack(
            message.event_time_us or 0, message.last_update_id, price_exponent, qty_exponent
        )
        groups = _levels(message.bids, price_exponent, qty_exponent, entry_padding) + _levels(
            message.asks, price_exponent, qty_exponent, entry_padding
        )
    elif isinstance(message, DepthDiff):
        template_id = Template.DEPTH_DIFF
        root = _DEPTH_DIFF_ROOT.pack(
            message.event_time_us,
            message.first_update_id,
            message.last_update_id,
            price_exponent,
            qty_exponent,
        )
        groups = _levels(message.bids, price_exponent, qty_exponent, entry_padding) + _levels(
            message.asks, price_exponent, qty_exponent, entry_padding
        )
    else:
        raise EncodeError(f"no SBE stream message for {type(message).__name__}")
    symbol = message.symbol.encode("utf-8")
    if len(symbol) > 255:
        raise EncodeError(f"symbol of {len(symbol)} bytes does not fit a varString8")
    root += bytes(root_padding)
    header = _HEADER.pack(len(root), template_id, SCHEMA_ID, version)
    return b"".join((header, root, groups, bytes((len(symbol),)), symbol))


def _mantissa(value_e8: int, exponent: int) -> int:
    try:
        return rescale_from_e8(value_e8, exponent)
    except FixedPointError as error:
        raise EncodeError(str(error)) from error


def _levels(
    levels: tuple[PriceLevel, ...], price_exponent: int, qty_exponent: int, padding: int
) -> bytes:
    if len(levels) > 0xFFFF:
        raise EncodeError(f"{len(levels)} levels do not fit a groupSize16Encoding count")
    pad = bytes(padding)
    body = b"".join(
        _LEVEL.pack(_mantissa(price, price_exponent), _mantissa(qty, qty_exponent)) + pad
        for price, qty in levels
    )
    return _GROUP_SIZE16.pack(_LEVEL.size + padding, len(levels)) + body
