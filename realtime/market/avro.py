"""Avro payloads for the bus and the archive, from the schemas in ``realtime/schemas/avro``.

Bus blocks in the ``avro`` encoding are schemaless Avro records (``realtime.bus.codec``);
archive files are Avro object containers that carry their schema. Events map to records
field for field, plus the lake's envelope (``source``, ``ingest_ts_us``, ``version``); book
levels become ``PriceLevel`` records.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator
from functools import cache
from importlib.resources import files
from typing import IO, Any

import fastavro

from realtime.market.events import AggTrade, BestBidAsk, DepthDiff, DepthSnapshot, Trade

RECORD_VERSION = 1
SCHEMA_NAMES = (
    "MarketTrade",
    "AggTrade",
    "BestBidAsk",
    "DepthDelta",
    "DepthSnapshot",
    "FeatureVector1s",
    "Prediction1s",
)
EVENT_SCHEMAS: dict[type, str] = {
    Trade: "MarketTrade",
    AggTrade: "AggTrade",
    BestBidAsk: "BestBidAsk",
    DepthDiff: "DepthDelta",
    DepthSnapshot: "DepthSnapshot",
}
_EVENT_TYPES = {name: event_type for event_type, name in EVENT_SCHEMAS.items()}
_LEVEL_FIELDS = ("bids", "asks")

Record = dict[str, Any]
BookEvent = Trade | AggTrade | BestBidAsk | DepthDiff | DepthSnapshot


@cache
def schema(name: str) -> dict:
    """The parsed Avro schema ``name`` (one of ``SCHEMA_NAMES``)."""
    if name not in SCHEMA_NAMES:
        raise KeyError(f"no Avro schema named {name!r}; known: {', '.join(SCHEMA_NAMES)}")
    text = (files("realtime.schemas") / "avro" / f"{name}.avsc").read_text(encoding="utf-8")
    return fastavro.parse_schema(json.loads(text))


def encode_record(name: str, record: Record) -> bytes:
    """One record as a schemaless Avro payload (the bus format)."""
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schema(name), record)
    return buffer.getvalue()


def decode_record(name: str, payload: bytes) -> Record:
    """The inverse of ``encode_record``."""
    return fastavro.schemaless_reader(io.BytesIO(payload), schema(name), None)


def write_container(
    file: IO[bytes], name: str, records: Iterable[Record], codec: str = "deflate"
) -> None:
    """Write records as an Avro object container file (the archive format)."""
    fastavro.writer(file, schema(name), records, codec=codec)


def read_container(file: IO[bytes]) -> Iterator[Record]:
    """Records of an Avro object container file, with the schema it carries."""
    yield from fastavro.reader(file)


def event_to_record(event: BookEvent, *, source: str, ingest_ts_us: int) -> Record:
    """A normalised event as the record of its schema, with the lake's envelope fields."""
    record = event._asdict()
    if isinstance(event, DepthDiff | DepthSnapshot):
        for side in _LEVEL_FIELDS:
            record[side] = [{"price_e8": price, "qty_e8": qty} for price, qty in record[side]]
    record["source"] = source
    record["ingest_ts_us"] = ingest_ts_us
    record["version"] = RECORD_VERSION
    return record


def record_to_event(name: str, record: Record) -> BookEvent:
    """The normalised event of a record of schema ``name`` (envelope fields dropped)."""
    event_type = _EVENT_TYPES[name]
    values = {field: record[field] for field in event_type._fields}
    for side in _LEVEL_FIELDS:
        if side in values:
            values[side] = tuple((level["price_e8"], level["qty_e8"]) for level in values[side])
    return event_type(**values)


def encode_event(event: BookEvent, *, source: str, ingest_ts_us: int) -> bytes:
    """A normalised event as a bus payload of its schema."""
    return encode_record(
        EVENT_SCHEMAS[type(event)], event_to_record(event, source=source, ingest_ts_us=ingest_ts_us)
    )


def decode_event(name: str, payload: bytes) -> BookEvent:
    """The normalised event of a bus payload of schema ``name``."""
    return record_to_event(name, decode_record(name, payload))
