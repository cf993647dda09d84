"""Bus entries: a block of normalised events of one stream per Redis Streams entry.

One entry carries every event of one ingest flush for one stream, not one event: ``XADD``
and ``XREAD`` cost about as much per entry as the encoding costs per event, so blocks are
what lets the bus carry tens of thousands of events a second.

Two encodings, named by the entry's ``c`` field, so a reader takes either:

* ``p1`` (the default): fixed little-endian ``struct`` layouts, one code byte per record.
  Encoding and decoding a trade costs about a microsecond; the Avro records below cost
  about twelve, which at 25,000 events a second is a third of a core (bench/service_pipeline.py).
* ``avro``: each record in its Avro schema (``realtime/schemas/avro``) with the lake's
  envelope, for consumers that want self-describing records.

The entry also names the source and ingest time once (``s``, ``t``), the envelope the
archive writes on every row. Symbols are not repeated per event: a bus stream is one
symbol's (``md:{SYM}:…``), so the reader supplies it.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Sequence

import fastavro

from realtime.market import avro
from realtime.market.events import BestBidAsk, DepthDiff, DepthSnapshot, Trade

BusEvent = Trade | BestBidAsk | DepthDiff | DepthSnapshot

COUNT_FIELD = b"n"
BLOCK_FIELD = b"a"
CODEC_FIELD = b"c"
SOURCE_FIELD = b"s"
INGEST_FIELD = b"t"
PACKED = "p1"
AVRO = "avro"
CODECS = (PACKED, AVRO)

_TRADE, _BBA, _DIFF, _PICTURE = 1, 2, 3, 4
_CODES: dict[type, int] = {
    Trade: _TRADE,
    BestBidAsk: _BBA,
    DepthDiff: _DIFF,
    DepthSnapshot: _PICTURE,
}
_SCHEMAS = {code: avro.EVENT_SCHEMAS[event_type] for event_type, code in _CODES.items()}

# Trade: id, price, qty, transact time, event time, buyer-maker, best match.
_TRADE_LAYOUT = struct.Struct("<BqqqqqBB")
# Best bid/ask: event time, update id, bid, bid qty, ask, ask qty.
_BBA_LAYOUT = struct.Struct("<Bqqqqqq")
# Depth diff: event time, first id, last id, bid levels, ask levels; then the levels.
_DIFF_LAYOUT = struct.Struct("<BqqqII")
# Depth picture: event time (-1: none), last update id, bid levels, ask levels; the levels.
_PICTURE_LAYOUT = struct.Struct("<BqqII")
_NO_TIME = -1


class MalformedBlock(ValueError):
    """A bus entry that is not a block this codec wrote (unknown code, cut record, count)."""


def encode_block(
    events: Sequence[BusEvent], *, source: str, ingest_ts_us: int, codec: str = PACKED
) -> dict:
    """The fields of one bus entry holding ``events`` in order."""
    if codec == PACKED:
        payload = b"".join(_pack(event) for event in events)
    elif codec == AVRO:
        payload = _avro_block(events, source, ingest_ts_us)
    else:
        raise ValueError(f"unknown bus codec {codec!r}; choose from {CODECS}")
    return {
        COUNT_FIELD: len(events),
        CODEC_FIELD: codec,
        SOURCE_FIELD: source,
        INGEST_FIELD: ingest_ts_us,
        BLOCK_FIELD: payload,
    }


def decode_block(fields: dict, symbol: str) -> list[BusEvent]:
    """The events of one bus entry; raises ``MalformedBlock`` rather than guess."""
    try:
        count = int(fields[COUNT_FIELD])
        payload = fields[BLOCK_FIELD]
        codec = fields.get(CODEC_FIELD, b"avro")
        codec = codec.decode() if isinstance(codec, bytes) else codec
    except (KeyError, ValueError, UnicodeDecodeError) as error:
        raise MalformedBlock(f"not a bus block: {error!r}") from error
    if codec == PACKED:
        events = _unpack(payload, count, symbol)
    elif codec == AVRO:
        events = _avro_events(payload, count)
    else:
        raise MalformedBlock(f"unknown bus codec {codec!r}")
    return events


def _pack(event: BusEvent) -> bytes:
    kind = type(event)
    if kind is Trade:
        return _TRADE_LAYOUT.pack(
            _TRADE,
            event.trade_id,
            event.price_e8,
            event.qty_e8,
            event.transact_time_us,
            event.event_time_us,
            event.is_buyer_maker,
            event.is_best_match,
        )
    if kind is BestBidAsk:
        return _BBA_LAYOUT.pack(
            _BBA,
            event.event_time_us,
            event.book_update_id,
            event.bid_price_e8,
            event.bid_qty_e8,
            event.ask_price_e8,
            event.ask_qty_e8,
        )
    levels = [value for level in (*event.bids, *event.asks) for value in level]
    tail = struct.pack(f"<{len(levels)}q", *levels)
    if kind is DepthDiff:
        head = _DIFF_LAYOUT.pack(
            _DIFF,
            event.event_time_us,
            event.first_update_id,
            event.last_update_id,
            len(event.bids),
            len(event.asks),
        )
        return head + tail
    if kind is DepthSnapshot:
        time_us = _NO_TIME if event.event_time_us is None else event.event_time_us
        head = _PICTURE_LAYOUT.pack(
            _PICTURE, time_us, event.last_update_id, len(event.bids), len(event.asks)
        )
        return head + tail
    raise TypeError(f"not a bus event: {kind.__name__}")


def _levels(payload: bytes, offset: int, n: int) -> tuple[tuple[tuple[int, int], ...], int]:
    values = struct.unpack_from(f"<{2 * n}q", payload, offset)
    return tuple(zip(values[::2], values[1::2], strict=True)), offset + 16 * n


def _unpack(payload: bytes, count: int, symbol: str) -> list[BusEvent]:
    events: list[BusEvent] = []
    offset, end = 0, len(payload)
    try:
        for _ in range(count):
            code = payload[offset]
            if code == _TRADE:
                _, trade_id, price, qty, transact, event_time, maker, best = (
                    _TRADE_LAYOUT.unpack_from(payload, offset)
                )
                offset += _TRADE_LAYOUT.size
                events.append(
                    Trade(symbol, trade_id, price, qty, maker == 1, transact, event_time, best == 1)
                )
            elif code == _BBA:
                _, *values = _BBA_LAYOUT.unpack_from(payload, offset)
                offset += _BBA_LAYOUT.size
                events.append(BestBidAsk(symbol, *values))
            elif code == _DIFF:
                _, time_us, first, last, n_bids, n_asks = _DIFF_LAYOUT.unpack_from(payload, offset)
                offset += _DIFF_LAYOUT.size
                bids, offset = _levels(payload, offset, n_bids)
                asks, offset = _levels(payload, offset, n_asks)
                events.append(DepthDiff(symbol, time_us, first, last, bids, asks))
            elif code == _PICTURE:
                _, time_us, last, n_bids, n_asks = _PICTURE_LAYOUT.unpack_from(payload, offset)
                offset += _PICTURE_LAYOUT.size
                bids, offset = _levels(payload, offset, n_bids)
                asks, offset = _levels(payload, offset, n_asks)
                picture_time = None if time_us == _NO_TIME else time_us
                events.append(DepthSnapshot(symbol, picture_time, last, bids, asks))
            else:
                raise MalformedBlock(f"unknown event code {code} at byte {offset}")
    except (IndexError, struct.error) as error:
        raise MalformedBlock(f"cut record after {len(events)} of {count} events") from error
    if offset != end:
        raise MalformedBlock(f"{end - offset} bytes after {count} events")
    return events


def _avro_block(events: Sequence[BusEvent], source: str, ingest_ts_us: int) -> bytes:
    buffer = io.BytesIO()
    for event in events:
        code = _CODES[type(event)]
        buffer.write(bytes((code,)))
        record = avro.event_to_record(event, source=source, ingest_ts_us=ingest_ts_us)
        fastavro.schemaless_writer(buffer, avro.schema(_SCHEMAS[code]), record)
    return buffer.getvalue()


def _avro_events(payload: bytes, count: int) -> list[BusEvent]:
    buffer = io.BytesIO(payload)
    events: list[BusEvent] = []
    try:
        for _ in range(count):
            code_byte = buffer.read(1)
            if not code_byte:
                raise MalformedBlock(f"block ends after {len(events)} of {count} events")
            code = code_byte[0]
            if code not in _SCHEMAS:
                raise MalformedBlock(f"unknown event code {code}")
            record = fastavro.schemaless_reader(buffer, avro.schema(_SCHEMAS[code]), None)
            events.append(avro.record_to_event(_SCHEMAS[code], record))  # type: ignore[arg-type]
    except (EOFError, ValueError, TypeError, IndexError) as error:
        if isinstance(error, MalformedBlock):
            raise
        raise MalformedBlock(f"cut or corrupt record after {len(events)} events") from error
    if buffer.tell() != len(payload):
        raise MalformedBlock(f"{len(payload) - buffer.tell()} bytes after {count} events")
    return events
