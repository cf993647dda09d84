"""Decode SBE stream frames (one message per WebSocket binary frame) into normalised events.

The procedure is Binance's (SPEC 1.8): check the header, read the root block at the
documented offsets, take root and group strides from the wire (a newer schema version may
append fields), read the symbol, and require the message to end exactly at the frame's end.
Every read is bounds-checked first, so a bad frame raises a typed ``SbeDecodeError``.
Mantissas are rescaled from the frame's exponents to e8; at e8 (what Binance sends for
BTCUSDT) that is skipped.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import NamedTuple

from realtime.binance.sbe.errors import (
    BlockTooShort,
    InsaneGroupCount,
    InvalidField,
    SchemaMismatch,
    TrailingBytes,
    TruncatedFrame,
    UnknownTemplate,
)
from realtime.binance.sbe.layout import (
    DIMENSIONS,
    E8,
    HEADER,
    HEADER_LENGTH,
    MAX_LEVELS_PER_SIDE,
    MAX_TRADES_PER_EVENT,
    MESSAGES,
    SCHEMA_ID,
    Template,
    block_struct,
    exponent_offsets,
)
from realtime.market.events import (
    BestBidAsk,
    DepthDiff,
    DepthSnapshot,
    PriceLevel,
    Trade,
    TradeBatch,
)
from realtime.market.fixed_point import FixedPointError, rescale_to_e8

SbeMessage = TradeBatch | BestBidAsk | DepthSnapshot | DepthDiff

_HEADER = block_struct(HEADER)
_GROUP_SIZE = block_struct(DIMENSIONS["groupSizeEncoding"])
_GROUP_SIZE16 = block_struct(DIMENSIONS["groupSize16Encoding"])
_TRADES = MESSAGES[Template.TRADES]
_BEST_BID_ASK = MESSAGES[Template.BEST_BID_ASK]
_DEPTH_SNAPSHOT = MESSAGES[Template.DEPTH_SNAPSHOT]
_DEPTH_DIFF = MESSAGES[Template.DEPTH_DIFF]
_TRADES_ROOT = block_struct(_TRADES.fields)
_TRADE_ENTRY = block_struct(_TRADES.groups[0].fields)
_BEST_BID_ASK_ROOT = block_struct(_BEST_BID_ASK.fields)
_DEPTH_SNAPSHOT_ROOT = block_struct(_DEPTH_SNAPSHOT.fields)
_DEPTH_DIFF_ROOT = block_struct(_DEPTH_DIFF.fields)
_LEVEL = block_struct(_DEPTH_DIFF.groups[0].fields)
_INT8 = struct.Struct("<b")
# A struct's size is where its last field ends (no trailing pad), i.e. the minimum wire length.
_LEVEL_MIN = _LEVEL.size
# Events are built with tuple.__new__ straight from the unpacked fields: NamedTuple's own
# __new__ is a Python-level call that costs as much as the rest of a best bid/ask decode.
_new = tuple.__new__
# Plain ints: hashing an IntEnum member runs Python code on every dict lookup.
_TRADES_ID = int(Template.TRADES)
_BEST_BID_ASK_ID = int(Template.BEST_BID_ASK)
_DEPTH_SNAPSHOT_ID = int(Template.DEPTH_SNAPSHOT)
_DEPTH_DIFF_ID = int(Template.DEPTH_DIFF)
_ROOT_LENGTHS = {int(template_id): layout.block_length for template_id, layout in MESSAGES.items()}

_symbols: dict[bytes, str] = {}
_SYMBOL_CACHE_LIMIT = 4096


class SbeHeader(NamedTuple):
    """The 8-byte message header."""

    block_length: int
    template_id: int
    schema_id: int
    version: int


def read_header(frame: bytes) -> SbeHeader:
    """Read and check the message header: at least 8 bytes, schema id 1, a known template."""
    return SbeHeader(*_checked_header(frame))


def _checked_header(frame: bytes) -> tuple[int, int, int, int]:
    if len(frame) < HEADER_LENGTH:
        raise TruncatedFrame(
            f"frame of {len(frame)} bytes is shorter than the 8-byte header", offset=0
        )
    header = _HEADER.unpack_from(frame, 0)
    if header[2] != SCHEMA_ID:
        raise SchemaMismatch(
            f"schema id {header[2]}, expected {SCHEMA_ID}", template_id=header[1], offset=4
        )
    if header[1] not in _DECODERS:
        raise UnknownTemplate(f"unknown template id {header[1]}", offset=2)
    return header


def wire_exponents(frame: bytes, header: SbeHeader) -> tuple[int, int]:
    """The frame's ``(priceExponent, qtyExponent)``, for tools that show a frame as it is."""
    price_offset, qty_offset = exponent_offsets(header.template_id)
    _require_root(frame, header.template_id, header.block_length)
    (price_exponent,) = _INT8.unpack_from(frame, HEADER_LENGTH + price_offset)
    (qty_exponent,) = _INT8.unpack_from(frame, HEADER_LENGTH + qty_offset)
    return price_exponent, qty_exponent


def decode(frame: bytes | bytearray | memoryview) -> SbeMessage:
    """Decode one frame into a ``TradeBatch``, ``BestBidAsk``, ``DepthSnapshot`` or ``DepthDiff``.

    Raises a subclass of ``SbeDecodeError`` for anything but a complete, well-formed message.
    """
    if type(frame) is not bytes:
        frame = bytes(frame)
    block_length, template_id, _, _ = _checked_header(frame)
    return _DECODERS[template_id](frame, block_length)


def _require_root(frame: bytes, template_id: int, block_length: int) -> int:
    """Check the wire root block covers the schema's fields and fits the frame; return its end."""
    known_length = _ROOT_LENGTHS[template_id]
    if block_length < known_length:
        raise BlockTooShort(
            f"root block of {block_length} bytes, the schema needs {known_length}",
            template_id=template_id,
            offset=0,
        )
    root_end = HEADER_LENGTH + block_length
    if root_end > len(frame):
        raise TruncatedFrame(
            f"frame of {len(frame)} bytes ends inside the {block_length}-byte root block",
            template_id=template_id,
            offset=len(frame),
        )
    return root_end


def _read_symbol(frame: bytes, position: int, template_id: int) -> str:
    """Read the trailing ``symbol`` varString8 and require the frame to end right after it."""
    length = len(frame)
    if position >= length:
        raise TruncatedFrame(
            "frame ends before the symbol", template_id=template_id, offset=position
        )
    end = position + 1 + frame[position]
    if end > length:
        raise TruncatedFrame(
            f"frame of {length} bytes ends inside the {frame[position]}-byte symbol",
            template_id=template_id,
            offset=length,
        )
    if end != length:
        raise TrailingBytes(
            f"{length - end} bytes after the symbol", template_id=template_id, offset=end
        )
    raw = frame[position + 1 : end]
    symbol = _symbols.get(raw)
    if symbol is None:
        try:
            symbol = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise InvalidField(
                f"symbol is not UTF-8: {raw!r}", template_id=template_id, offset=position
            ) from error
        if len(_symbols) < _SYMBOL_CACHE_LIMIT:
            _symbols[raw] = symbol
    return symbol


def _rescale(mantissa: int, exponent: int, template_id: int) -> int:
    try:
        return rescale_to_e8(mantissa, exponent)
    except FixedPointError as error:
        raise InvalidField(str(error), template_id=template_id) from error


def _read_levels(
    frame: bytes, position: int, template_id: int, side: str, price_exponent: int, qty_exponent: int
) -> tuple[tuple[PriceLevel, ...], int]:
    """Read one ``groupSize16Encoding`` group of price levels; return them and the next offset."""
    if position + _GROUP_SIZE16.size > len(frame):
        raise TruncatedFrame(
            f"frame ends inside the {side} group header", template_id=template_id, offset=position
        )
    entry_length, count = _GROUP_SIZE16.unpack_from(frame, position)
    if entry_length < _LEVEL_MIN:
        raise BlockTooShort(
            f"{side} entries of {entry_length} bytes, the schema needs {_LEVEL_MIN}",
            template_id=template_id,
            offset=position,
        )
    if count > MAX_LEVELS_PER_SIDE:
        raise InsaneGroupCount(f"{count} {side} levels", template_id=template_id, offset=position)
    start = position + _GROUP_SIZE16.size
    end = start + count * entry_length
    if end > len(frame):
        raise TruncatedFrame(
            f"frame of {len(frame)} bytes ends inside {count} {side} levels",
            template_id=template_id,
            offset=len(frame),
        )
    if entry_length == _LEVEL_MIN:
        levels = tuple(_LEVEL.iter_unpack(frame[start:end]))
    else:
        levels = tuple(_LEVEL.unpack_from(frame, start + i * entry_length) for i in range(count))
    if price_exponent != E8 or qty_exponent != E8:
        levels = tuple(
            (_rescale(price, price_exponent, template_id), _rescale(qty, qty_exponent, template_id))
            for price, qty in levels
        )
    return levels, end


def _read_book_sides(
    frame: bytes, position: int, template_id: int, price_exponent: int, qty_exponent: int
) -> tuple[tuple[PriceLevel, ...], tuple[PriceLevel, ...], str]:
    """Read the ``bids`` and ``asks`` groups and the trailing symbol of a depth message."""
    bids, position = _read_levels(
        frame, position, template_id, "bids", price_exponent, qty_exponent
    )
    asks, position = _read_levels(
        frame, position, template_id, "asks", price_exponent, qty_exponent
    )
    return bids, asks, _read_symbol(frame, position, template_id)


def _decode_trades(frame: bytes, block_length: int) -> TradeBatch:
    template_id = _TRADES_ID
    root_end = _require_root(frame, template_id, block_length)
    event_time, transact_time, price_exponent, qty_exponent = _TRADES_ROOT.unpack_from(
        frame, HEADER_LENGTH
    )
    if root_end + _GROUP_SIZE.size > len(frame):
        raise TruncatedFrame(
            "frame ends inside the trades group header", template_id=template_id, offset=root_end
        )
    entry_length, count = _GROUP_SIZE.unpack_from(frame, root_end)
    if entry_length < _TRADE_ENTRY.size:
        raise BlockTooShort(
            f"trade entries of {entry_length} bytes, the schema needs {_TRADE_ENTRY.size}",
            template_id=template_id,
            offset=root_end,
        )
    if count > MAX_TRADES_PER_EVENT:
        raise InsaneGroupCount(
            f"{count} trades in one event", template_id=template_id, offset=root_end
        )
    start = root_end + _GROUP_SIZE.size
    end = start + count * entry_length
    if end > len(frame):
        raise TruncatedFrame(
            f"frame of {len(frame)} bytes ends inside {count} trades",
            template_id=template_id,
            offset=len(frame),
        )
    symbol = _read_symbol(frame, end, template_id)
    rescale = price_exponent != E8 or qty_exponent != E8
    trades = []
    for position in range(start, end, entry_length):
        trade_id, price, qty, buyer_maker = _TRADE_ENTRY.unpack_from(frame, position)
        if buyer_maker > 1:
            raise InvalidField(
                f"isBuyerMaker = {buyer_maker} in trade {trade_id}", template_id=template_id
            )
        if rescale:
            price = _rescale(price, price_exponent, template_id)
            qty = _rescale(qty, qty_exponent, template_id)
        trades.append(
            _new(
                Trade,
                (symbol, trade_id, price, qty, buyer_maker == 1, transact_time, event_time, True),
            )
        )
    return _new(TradeBatch, (symbol, event_time, transact_time, tuple(trades)))


def _decode_best_bid_ask(frame: bytes, block_length: int) -> BestBidAsk:
    template_id = _BEST_BID_ASK_ID
    symbol = _read_symbol(frame, _require_root(frame, template_id, block_length), template_id)
    (
        event_time,
        update_id,
        price_exponent,
        qty_exponent,
        bid_price,
        bid_qty,
        ask_price,
        ask_qty,
    ) = _BEST_BID_ASK_ROOT.unpack_from(frame, HEADER_LENGTH)
    if price_exponent != E8 or qty_exponent != E8:
        bid_price = _rescale(bid_price, price_exponent, template_id)
        ask_price = _rescale(ask_price, price_exponent, template_id)
        bid_qty = _rescale(bid_qty, qty_exponent, template_id)
        ask_qty = _rescale(ask_qty, qty_exponent, template_id)
    return _new(BestBidAsk, (symbol, event_time, update_id, bid_price, bid_qty, ask_price, ask_qty))


def _decode_depth_snapshot(frame: bytes, block_length: int) -> DepthSnapshot:
    template_id = _DEPTH_SNAPSHOT_ID
    root_end = _require_root(frame, template_id, block_length)
    event_time, update_id, price_exponent, qty_exponent = _DEPTH_SNAPSHOT_ROOT.unpack_from(
        frame, HEADER_LENGTH
    )
    bids, asks, symbol = _read_book_sides(
        frame, root_end, template_id, price_exponent, qty_exponent
    )
    return _new(DepthSnapshot, (symbol, event_time, update_id, bids, asks))


def _decode_depth_diff(frame: bytes, block_length: int) -> DepthDiff:
    template_id = _DEPTH_DIFF_ID
    root_end = _require_root(frame, template_id, block_length)
    event_time, first_id, last_id, price_exponent, qty_exponent = _DEPTH_DIFF_ROOT.unpack_from(
        frame, HEADER_LENGTH
    )
    bids, asks, symbol = _read_book_sides(
        frame, root_end, template_id, price_exponent, qty_exponent
    )
    return _new(DepthDiff, (symbol, event_time, first_id, last_id, bids, asks))


_DECODERS: dict[int, Callable[[bytes, int], SbeMessage]] = {
    _TRADES_ID: _decode_trades,
    _BEST_BID_ASK_ID: _decode_best_bid_ask,
    _DEPTH_SNAPSHOT_ID: _decode_depth_snapshot,
    _DEPTH_DIFF_ID: _decode_depth_diff,
}
