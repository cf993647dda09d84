"""Facts of Binance's SBE stream schema (``spot_stream``, id 1, version 0) the codec is built from.

Every offset and block length here was taken from ``stream_1_0.xml``; a test pins this table
to the schema's facts and re-derives it from the XML, so a schema change fails CI instead
of silently mis-decoding. At run time the decoder still takes strides from the wire.
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import NamedTuple

SCHEMA_ID = 1
SCHEMA_VERSION = 0
E8 = -8
"""The exponent of the normalised events; frames at another exponent are rescaled."""

MAX_TRADES_PER_EVENT = 10_000
MAX_LEVELS_PER_SIDE = 10_000
"""Sanity bounds: larger counts mean a corrupt frame (REST depth stops at 5000 levels)."""

PRIMITIVES = {"int8": "b", "uint8": "B", "uint16": "H", "uint32": "I", "int64": "q"}


class Template(IntEnum):
    """SBE template ids of the four market-data stream messages."""

    TRADES = 10000
    BEST_BID_ASK = 10001
    DEPTH_SNAPSHOT = 10002
    DEPTH_DIFF = 10003


class FieldLayout(NamedTuple):
    name: str
    offset: int
    primitive: str


class GroupLayout(NamedTuple):
    name: str
    group_id: int
    dimension: str
    """``groupSizeEncoding`` (uint16 blockLength, uint32 count) or ``groupSize16Encoding``."""
    block_length: int
    fields: tuple[FieldLayout, ...]


class MessageLayout(NamedTuple):
    name: str
    template_id: int
    block_length: int
    fields: tuple[FieldLayout, ...]
    groups: tuple[GroupLayout, ...]
    var_data: tuple[str, ...]


HEADER = (
    FieldLayout("blockLength", 0, "uint16"),
    FieldLayout("templateId", 2, "uint16"),
    FieldLayout("schemaId", 4, "uint16"),
    FieldLayout("version", 6, "uint16"),
)
HEADER_LENGTH = 8

DIMENSIONS = {
    "groupSizeEncoding": (
        FieldLayout("blockLength", 0, "uint16"),
        FieldLayout("numInGroup", 2, "uint32"),
    ),
    "groupSize16Encoding": (
        FieldLayout("blockLength", 0, "uint16"),
        FieldLayout("numInGroup", 2, "uint16"),
    ),
}

_LEVEL_FIELDS = (FieldLayout("price", 0, "int64"), FieldLayout("qty", 8, "int64"))

MESSAGES: dict[int, MessageLayout] = {
    Template.TRADES: MessageLayout(
        name="TradesStreamEvent",
        template_id=Template.TRADES,
        block_length=18,
        fields=(
            FieldLayout("eventTime", 0, "int64"),
            FieldLayout("transactTime", 8, "int64"),
            FieldLayout("priceExponent", 16, "int8"),
            FieldLayout("qtyExponent", 17, "int8"),
        ),
        groups=(
            GroupLayout(
                name="trades",
                group_id=100,
                dimension="groupSizeEncoding",
                block_length=25,
                # isBestMatch is presence="constant": zero bytes on the wire.
                fields=(
                    FieldLayout("id", 0, "int64"),
                    FieldLayout("price", 8, "int64"),
                    FieldLayout("qty", 16, "int64"),
                    FieldLayout("isBuyerMaker", 24, "uint8"),
                ),
            ),
        ),
        var_data=("symbol",),
    ),
    Template.BEST_BID_ASK: MessageLayout(
        name="BestBidAskStreamEvent",
        template_id=Template.BEST_BID_ASK,
        block_length=50,
        fields=(
            FieldLayout("eventTime", 0, "int64"),
            FieldLayout("bookUpdateId", 8, "int64"),
            FieldLayout("priceExponent", 16, "int8"),
            FieldLayout("qtyExponent", 17, "int8"),
            FieldLayout("bidPrice", 18, "int64"),
            FieldLayout("bidQty", 26, "int64"),
            FieldLayout("askPrice", 34, "int64"),
            FieldLayout("askQty", 42, "int64"),
        ),
        groups=(),
        var_data=("symbol",),
    ),
    Template.DEPTH_SNAPSHOT: MessageLayout(
        name="DepthSnapshotStreamEvent",
        template_id=Template.DEPTH_SNAPSHOT,
        block_length=18,
        fields=(
            FieldLayout("eventTime", 0, "int64"),
            FieldLayout("bookUpdateId", 8, "int64"),
            FieldLayout("priceExponent", 16, "int8"),
            FieldLayout("qtyExponent", 17, "int8"),
        ),
        groups=(
            GroupLayout("bids", 100, "groupSize16Encoding", 16, _LEVEL_FIELDS),
            GroupLayout("asks", 101, "groupSize16Encoding", 16, _LEVEL_FIELDS),
        ),
        var_data=("symbol",),
    ),
    Template.DEPTH_DIFF: MessageLayout(
        name="DepthDiffStreamEvent",
        template_id=Template.DEPTH_DIFF,
        block_length=26,
        fields=(
            FieldLayout("eventTime", 0, "int64"),
            FieldLayout("firstBookUpdateId", 8, "int64"),
            FieldLayout("lastBookUpdateId", 16, "int64"),
            FieldLayout("priceExponent", 24, "int8"),
            FieldLayout("qtyExponent", 25, "int8"),
        ),
        groups=(
            GroupLayout("bids", 100, "groupSize16Encoding", 16, _LEVEL_FIELDS),
            GroupLayout("asks", 101, "groupSize16Encoding", 16, _LEVEL_FIELDS),
        ),
        var_data=("symbol",),
    ),
}


def block_struct(fields: tuple[FieldLayout, ...]) -> struct.Struct:
    """A little-endian ``struct.Struct`` reading ``fields`` at their offsets; gaps are padding."""
    parts = ["<"]
    position = 0
    for field in sorted(fields, key=lambda f: f.offset):
        if field.offset < position:
            raise ValueError(f"field {field.name} overlaps the one before it")
        parts.append("x" * (field.offset - position))
        code = PRIMITIVES[field.primitive]
        parts.append(code)
        position = field.offset + struct.calcsize("<" + code)
    return struct.Struct("".join(parts))


def exponent_offsets(template_id: int) -> tuple[int, int]:
    """Root-block offsets of ``priceExponent`` and ``qtyExponent`` for a template."""
    by_name = {field.name: field.offset for field in MESSAGES[template_id].fields}
    return by_name["priceExponent"], by_name["qtyExponent"]
