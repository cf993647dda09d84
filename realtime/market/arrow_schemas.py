"""Arrow schemas of trade and kline tables in fixed point, shared by archive, REST and bronze.

Prices and per-trade quantities are int64 e8 mantissas. Kline volumes are decimal128(38, 8):
a month of BTCUSDT quote volume (~1e12 USDT) times 1e8 overflows int64, so they keep
Binance's own width (the SBE klines response uses int128 for the same reason).
"""

from __future__ import annotations

import pyarrow as pa

TIMESTAMP_US = pa.timestamp("us", tz="UTC")
VOLUME_E8 = pa.decimal128(38, 8)

AGG_TRADES = pa.schema(
    [
        pa.field("agg_trade_id", pa.int64(), nullable=False),
        pa.field("price_e8", pa.int64(), nullable=False),
        pa.field("qty_e8", pa.int64(), nullable=False),
        pa.field("first_trade_id", pa.int64(), nullable=False),
        pa.field("last_trade_id", pa.int64(), nullable=False),
        pa.field("transact_time", TIMESTAMP_US, nullable=False),
        pa.field("is_buyer_maker", pa.bool_(), nullable=False),
        pa.field("is_best_match", pa.bool_(), nullable=False),
    ]
)

TRADES = pa.schema(
    [
        pa.field("trade_id", pa.int64(), nullable=False),
        pa.field("price_e8", pa.int64(), nullable=False),
        pa.field("qty_e8", pa.int64(), nullable=False),
        pa.field("quote_qty_e8", pa.int64(), nullable=False),
        pa.field("transact_time", TIMESTAMP_US, nullable=False),
        pa.field("is_buyer_maker", pa.bool_(), nullable=False),
        pa.field("is_best_match", pa.bool_(), nullable=False),
    ]
)

KLINES = pa.schema(
    [
        pa.field("open_time", TIMESTAMP_US, nullable=False),
        pa.field("open_e8", pa.int64(), nullable=False),
        pa.field("high_e8", pa.int64(), nullable=False),
        pa.field("low_e8", pa.int64(), nullable=False),
        pa.field("close_e8", pa.int64(), nullable=False),
        pa.field("volume", VOLUME_E8, nullable=False),
        pa.field("close_time", TIMESTAMP_US, nullable=False),
        pa.field("quote_volume", VOLUME_E8, nullable=False),
        pa.field("trade_count", pa.int64(), nullable=False),
        pa.field("taker_buy_base_volume", VOLUME_E8, nullable=False),
        pa.field("taker_buy_quote_volume", VOLUME_E8, nullable=False),
    ]
)

BEST_BID_ASK = pa.schema(
    [
        pa.field("event_time", TIMESTAMP_US, nullable=False),
        pa.field("book_update_id", pa.int64(), nullable=False),
        pa.field("bid_price_e8", pa.int64(), nullable=False),
        pa.field("bid_qty_e8", pa.int64(), nullable=False),
        pa.field("ask_price_e8", pa.int64(), nullable=False),
        pa.field("ask_qty_e8", pa.int64(), nullable=False),
    ]
)
