"""Edits the exchange's faults make to well-formed SBE frames: times moved, trade ids jumped.

Each edit rewrites one field in place at its schema offset (``binance.sbe.layout``) and
leaves every other byte as encoded, so the result is still a complete, well-formed message
a decoder accepts: only its values lie. The exchange's own tape never sees these edits.
"""

from __future__ import annotations

import random
import struct

from realtime.binance.sbe.layout import (
    DIMENSIONS,
    HEADER,
    HEADER_LENGTH,
    MESSAGES,
    Template,
    block_struct,
)

_HEADER = block_struct(HEADER)
_GROUP_SIZE = block_struct(DIMENSIONS["groupSizeEncoding"])
_INT64 = struct.Struct("<q")
_TIME_FIELDS = ("eventTime", "transactTime")
_TIME_OFFSETS = {
    int(template_id): tuple(
        HEADER_LENGTH + field.offset for field in layout.fields if field.name in _TIME_FIELDS
    )
    for template_id, layout in MESSAGES.items()
}
_TRADE_ID_OFFSET = next(
    field.offset for field in MESSAGES[Template.TRADES].groups[0].fields if field.name == "id"
)


class NotEditable(ValueError):
    """A frame the edit does not apply to (not an SBE message this exchange encodes)."""


def shift_times(frame: bytes, shift_us: int) -> bytes:
    """``frame`` with its ``eventTime`` (and a trade's ``transactTime``) moved by ``shift_us``.

    Works on every stream message (trades, best bid/ask, depth diff, depth snapshot).
    """
    _, template_id, _, _ = _header(frame)
    edited = bytearray(frame)
    for offset in _TIME_OFFSETS[template_id]:
        (value,) = _INT64.unpack_from(edited, offset)
        _INT64.pack_into(edited, offset, value + shift_us)
    return bytes(edited)


def jump_trade_ids(frame: bytes, jump: int) -> bytes:
    """A trades frame with every trade id moved by ``jump``; prices and sizes unchanged."""
    block_length, template_id, _, _ = _header(frame)
    if template_id != Template.TRADES:
        raise NotEditable(f"template {template_id} carries no trade ids")
    group_at = HEADER_LENGTH + block_length
    entry_length, count = _GROUP_SIZE.unpack_from(frame, group_at)
    edited = bytearray(frame)
    first_entry = group_at + _GROUP_SIZE.size
    for index in range(count):
        offset = first_entry + index * entry_length + _TRADE_ID_OFFSET
        (trade_id,) = _INT64.unpack_from(edited, offset)
        _INT64.pack_into(edited, offset, trade_id + jump)
    return bytes(edited)


def garbage_frame(length: int, rng: random.Random) -> bytes:
    """``length`` random bytes whose header can never name this schema's known messages.

    Random bytes would pass the header check about once in 10^9 frames; forcing the schema
    id off by one makes "a decoder must reject it" a fact, not a probability.
    """
    junk = bytearray(rng.randbytes(max(length, HEADER_LENGTH)))
    (schema_id,) = struct.unpack_from("<H", junk, 4)
    if schema_id == 1:
        struct.pack_into("<H", junk, 4, 2)
    return bytes(junk)


def _header(frame: bytes) -> tuple[int, int, int, int]:
    if len(frame) < HEADER_LENGTH:
        raise NotEditable(f"a frame of {len(frame)} bytes has no SBE header")
    header = _HEADER.unpack_from(frame, 0)
    if header[1] not in _TIME_OFFSETS:
        raise NotEditable(f"unknown template {header[1]}")
    return header
