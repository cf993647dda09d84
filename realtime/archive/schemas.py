"""Arrow schemas of the capture segments, one per kind, shared with the lake's live tables.

Prices and quantities are int64 e8 mantissas, times ``timestamp[us, UTC]``, as everywhere in
the lake. Every row carries the lake's envelope: ``source`` (``sbe`` for live market data,
``live`` for predictions), ``ingest_ts`` (when the row was captured) and ``version``.
"""

from __future__ import annotations

import pyarrow as pa

from realtime.market.arrow_schemas import TIMESTAMP_US
from realtime.market.events import BestBidAsk, DepthDiff, DepthSnapshot, Trade

TRADES = "trades"
BEST_BID_ASK = "best_bid_ask"
DEPTH = "depth"
PREDICTIONS = "predictions"
MARKET_KINDS = (TRADES, BEST_BID_ASK, DEPTH)
KINDS = (*MARKET_KINDS, PREDICTIONS)

KIND_OF_EVENT: dict[type, str] = {
    Trade: TRADES,
    BestBidAsk: BEST_BID_ASK,
    DepthDiff: DEPTH,
    DepthSnapshot: DEPTH,
}
"""Where each bus event type is archived (depth20 snapshots ride with the diffs)."""

ENVELOPE = [
    pa.field("source", pa.string(), nullable=False),
    pa.field("ingest_ts", TIMESTAMP_US, nullable=False),
    pa.field("version", pa.int32(), nullable=False),
]
_SYMBOL = pa.field("symbol", pa.string(), nullable=False)
_EVENT_TIME = pa.field("event_time", TIMESTAMP_US, nullable=False)

LEVEL = pa.struct(
    [
        pa.field("price_e8", pa.int64(), nullable=False),
        pa.field("qty_e8", pa.int64(), nullable=False),
    ]
)
LEVELS = pa.list_(pa.field("element", LEVEL, nullable=False))
"""Book levels, best first. The item is named ``element`` as Iceberg names list items, so a
segment's schema is the lake table's schema without any renaming."""

TRADES_SCHEMA = pa.schema(
    [
        _SYMBOL,
        pa.field("trade_id", pa.int64(), nullable=False),
        pa.field("price_e8", pa.int64(), nullable=False),
        pa.field("qty_e8", pa.int64(), nullable=False),
        pa.field("is_buyer_maker", pa.bool_(), nullable=False),
        pa.field("is_best_match", pa.bool_(), nullable=False),
        pa.field("transact_time", TIMESTAMP_US, nullable=False),
        _EVENT_TIME,
        *ENVELOPE,
    ]
)
BEST_BID_ASK_SCHEMA = pa.schema(
    [
        _SYMBOL,
        _EVENT_TIME,
        pa.field("book_update_id", pa.int64(), nullable=False),
        pa.field("bid_price_e8", pa.int64(), nullable=False),
        pa.field("bid_qty_e8", pa.int64(), nullable=False),
        pa.field("ask_price_e8", pa.int64(), nullable=False),
        pa.field("ask_qty_e8", pa.int64(), nullable=False),
        *ENVELOPE,
    ]
)
DEPTH_SCHEMA = pa.schema(
    [
        _SYMBOL,
        _EVENT_TIME,
        # Null for snapshots, which carry only the id they are current to.
        pa.field("first_update_id", pa.int64()),
        pa.field("last_update_id", pa.int64(), nullable=False),
        pa.field("bids", LEVELS, nullable=False),
        pa.field("asks", LEVELS, nullable=False),
        pa.field("snapshot", pa.bool_(), nullable=False),
        *ENVELOPE,
    ]
)
PREDICTIONS_SCHEMA = pa.schema(
    [
        _SYMBOL,
        pa.field("ts_sec", pa.int64(), nullable=False),
        pa.field("yhat_log_return_10s", pa.float64()),
        pa.field("latency_ms", pa.float64(), nullable=False),
        pa.field("model_version", pa.string(), nullable=False),
        pa.field("fallback_level", pa.int32(), nullable=False),
        pa.field("feature_age_ms", pa.int64(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("tick_time", TIMESTAMP_US, nullable=False),
        *ENVELOPE,
    ]
)

SCHEMAS: dict[str, pa.Schema] = {
    TRADES: TRADES_SCHEMA,
    BEST_BID_ASK: BEST_BID_ASK_SCHEMA,
    DEPTH: DEPTH_SCHEMA,
    PREDICTIONS: PREDICTIONS_SCHEMA,
}
TIME_COLUMNS: dict[str, str] = {
    TRADES: "event_time",
    BEST_BID_ASK: "event_time",
    DEPTH: "event_time",
    PREDICTIONS: "tick_time",
}
"""The column that places a row in time: its segment's day, the lake's partition. A
prediction belongs to the tick that made it (its ``ts_sec`` may be the previous day's)."""
