"""SBE codec for Binance's market-data stream schema (id 1, version 0).

``decode(frame)`` turns one WebSocket binary frame into a normalised event;
``encode(event)`` is its inverse. Frame problems raise ``SbeDecodeError`` subclasses.
"""

from realtime.binance.sbe.decode import SbeHeader, SbeMessage, decode, read_header, wire_exponents
from realtime.binance.sbe.encode import encode
from realtime.binance.sbe.errors import (
    BlockTooShort,
    EncodeError,
    InsaneGroupCount,
    InvalidField,
    SbeDecodeError,
    SchemaMismatch,
    TrailingBytes,
    TruncatedFrame,
    UnknownTemplate,
)
from realtime.binance.sbe.layout import MESSAGES, SCHEMA_ID, SCHEMA_VERSION, Template

__all__ = [
    "MESSAGES",
    "SCHEMA_ID",
    "SCHEMA_VERSION",
    "BlockTooShort",
    "EncodeError",
    "InsaneGroupCount",
    "InvalidField",
    "SbeDecodeError",
    "SbeHeader",
    "SbeMessage",
    "SchemaMismatch",
    "Template",
    "TrailingBytes",
    "TruncatedFrame",
    "UnknownTemplate",
    "decode",
    "encode",
    "read_header",
    "wire_exponents",
]
