"""Normalised events and predictions as record batches of the capture schemas (pure).

Columns are built from attribute lists rather than row dicts: the bus carries tens of
thousands of events a second, and this is the archive's only per-event work.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain

import pyarrow as pa

from realtime.archive import schemas
from realtime.inference.prediction import Prediction
from realtime.market.avro import RECORD_VERSION
from realtime.market.events import BestBidAsk, DepthDiff, DepthSnapshot, PriceLevel, Trade

MARKET_SOURCE = "sbe"
PREDICTION_SOURCE = "live"


def market_batch(
    kind: str, events: Sequence[object], *, source: str, ingest_ts_us: int
) -> pa.RecordBatch:
    """``events`` of one market ``kind`` (``trades``, ``best_bid_ask``, ``depth``)."""
    build = _BUILDERS.get(kind)
    if build is None:
        raise ValueError(f"not a market capture kind: {kind!r}")
    return build(events, source, ingest_ts_us)


def trades_batch(trades: Sequence[Trade], source: str, ingest_ts_us: int) -> pa.RecordBatch:
    return _batch(
        schemas.TRADES_SCHEMA,
        {
            "symbol": [t.symbol for t in trades],
            "trade_id": [t.trade_id for t in trades],
            "price_e8": [t.price_e8 for t in trades],
            "qty_e8": [t.qty_e8 for t in trades],
            "is_buyer_maker": [t.is_buyer_maker for t in trades],
            "is_best_match": [t.is_best_match for t in trades],
            "transact_time": [t.transact_time_us for t in trades],
            "event_time": [t.event_time_us for t in trades],
        },
        source,
        ingest_ts_us,
    )


def best_bid_ask_batch(
    quotes: Sequence[BestBidAsk], source: str, ingest_ts_us: int
) -> pa.RecordBatch:
    return _batch(
        schemas.BEST_BID_ASK_SCHEMA,
        {
            "symbol": [q.symbol for q in quotes],
            "event_time": [q.event_time_us for q in quotes],
            "book_update_id": [q.book_update_id for q in quotes],
            "bid_price_e8": [q.bid_price_e8 for q in quotes],
            "bid_qty_e8": [q.bid_qty_e8 for q in quotes],
            "ask_price_e8": [q.ask_price_e8 for q in quotes],
            "ask_qty_e8": [q.ask_qty_e8 for q in quotes],
        },
        source,
        ingest_ts_us,
    )


def depth_batch(
    events: Sequence[DepthDiff | DepthSnapshot], source: str, ingest_ts_us: int
) -> pa.RecordBatch:
    """Diffs and depth20 snapshots; a snapshot without a time (REST) is placed at its
    capture time, ``ingest_ts_us``."""
    return _batch(
        schemas.DEPTH_SCHEMA,
        {
            "symbol": [e.symbol for e in events],
            "event_time": [
                ingest_ts_us if e.event_time_us is None else e.event_time_us for e in events
            ],
            "first_update_id": [
                e.first_update_id if isinstance(e, DepthDiff) else None for e in events
            ],
            "last_update_id": [e.last_update_id for e in events],
            "bids": _levels([e.bids for e in events]),
            "asks": _levels([e.asks for e in events]),
            "snapshot": [isinstance(e, DepthSnapshot) for e in events],
        },
        source,
        ingest_ts_us,
    )


def predictions_batch(
    predictions: Sequence[Prediction], source: str = PREDICTION_SOURCE
) -> pa.RecordBatch:
    """Predictions, with ``ingest_ts`` = the tick time, as in their Avro record."""
    tick_us = [p.tick_time_us for p in predictions]
    columns = {
        "symbol": [p.symbol for p in predictions],
        "ts_sec": [p.ts_sec for p in predictions],
        "yhat_log_return_10s": [p.yhat_log_return_10s for p in predictions],
        "latency_ms": [p.latency_ms for p in predictions],
        "model_version": [p.model_version for p in predictions],
        "fallback_level": [p.fallback_level for p in predictions],
        "feature_age_ms": [p.feature_age_ms for p in predictions],
        "reason": [p.reason for p in predictions],
        "tick_time": tick_us,
        "source": [source] * len(predictions),
        "ingest_ts": tick_us,
        "version": [RECORD_VERSION] * len(predictions),
    }
    schema = schemas.PREDICTIONS_SCHEMA
    return pa.RecordBatch.from_arrays(
        [pa.array(columns[f.name], f.type) for f in schema], schema=schema
    )


def _batch(
    schema: pa.Schema, columns: dict[str, list | pa.Array], source: str, ingest_ts_us: int
) -> pa.RecordBatch:
    n = len(columns["symbol"])
    columns = {
        **columns,
        "source": [source] * n,
        "ingest_ts": [ingest_ts_us] * n,
        "version": [RECORD_VERSION] * n,
    }
    arrays = [
        column if isinstance(column := columns[f.name], pa.Array) else pa.array(column, f.type)
        for f in schema
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _levels(sides: list[tuple[PriceLevel, ...]]) -> pa.Array:
    """One list of ``(price_e8, qty_e8)`` levels per event, as ``list<struct>`` built from
    flat columns (no dict per level)."""
    offsets = [0]
    for levels in sides:
        offsets.append(offsets[-1] + len(levels))
    flat = list(chain.from_iterable(sides))
    values = pa.StructArray.from_arrays(
        [pa.array([p for p, _ in flat], pa.int64()), pa.array([q for _, q in flat], pa.int64())],
        fields=list(schemas.LEVEL),
    )
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values, type=schemas.LEVELS)


_BUILDERS = {
    schemas.TRADES: trades_batch,
    schemas.BEST_BID_ASK: best_bid_ask_batch,
    schemas.DEPTH: depth_batch,
}
