"""Bronze aggregate trades for the model tests: a table builder and a hypothesis strategy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import pyarrow as pa
from hypothesis import strategies as st

from btc_platform_tests.realtime.features.streams import START_US, trade_rows
from realtime.market.events import AggTrade

TIMESTAMP_US = pa.timestamp("us", tz="UTC")
SYMBOL = "BTCUSDT"
START_SEC = START_US // 1_000_000
INGEST_US = START_US + 86_400_000_000

BRONZE_AGG_TRADES = pa.schema(
    [
        pa.field("symbol", pa.string()),
        pa.field("agg_trade_id", pa.int64()),
        pa.field("price_e8", pa.int64()),
        pa.field("qty_e8", pa.int64()),
        pa.field("first_trade_id", pa.int64()),
        pa.field("last_trade_id", pa.int64()),
        pa.field("transact_time", TIMESTAMP_US),
        pa.field("is_buyer_maker", pa.bool_()),
        pa.field("is_best_match", pa.bool_()),
        pa.field("source", pa.string()),
        pa.field("ingest_ts", TIMESTAMP_US),
        pa.field("version", pa.int32()),
    ]
)
"""The contract of the source ``bronze.agg_trades``."""


class BronzeRow(NamedTuple):
    """One aggregate trade as one source ingested it."""

    trade: AggTrade
    source: str = "archive"
    ingest_ts_us: int = INGEST_US
    version: int = 1


def bronze_agg_trades(rows: Sequence[BronzeRow | AggTrade]) -> pa.Table:
    """``rows`` as a ``bronze.agg_trades`` table; a bare ``AggTrade`` is an archive row."""
    rows = [row if isinstance(row, BronzeRow) else BronzeRow(row) for row in rows]
    columns = {name: [getattr(row.trade, name) for row in rows] for name in AggTrade._fields}
    return pa.table(
        {
            "symbol": columns["symbol"],
            "agg_trade_id": columns["agg_trade_id"],
            "price_e8": columns["price_e8"],
            "qty_e8": columns["qty_e8"],
            "first_trade_id": columns["first_trade_id"],
            "last_trade_id": columns["last_trade_id"],
            "transact_time": columns["transact_time_us"],
            "is_buyer_maker": columns["is_buyer_maker"],
            "is_best_match": columns["is_best_match"],
            "source": [row.source for row in rows],
            "ingest_ts": [row.ingest_ts_us for row in rows],
            "version": [row.version for row in rows],
        },
        schema=BRONZE_AGG_TRADES,
    )


def agg_trade(
    agg_trade_id: int,
    time_us: int,
    price_e8: int = 98_000 * 10**8,
    qty_e8: int = 10**6,
    *,
    fills: int = 1,
    is_buyer_maker: bool = False,
    symbol: str = SYMBOL,
) -> AggTrade:
    """An aggregate trade of ``fills`` trades, its trade ids derived from ``agg_trade_id``."""
    first = 10 * agg_trade_id
    return AggTrade(
        symbol, agg_trade_id, price_e8, qty_e8, first, first + fills - 1, time_us, is_buyer_maker
    )


@st.composite
def agg_trade_streams(draw: st.DrawFn, max_size: int = 60) -> list[AggTrade]:
    """Time-ordered aggregate trades with consecutive ids: several a second, empty seconds
    between, quantities up to 50 BTC (one second's notional then passes 2**63)."""
    rows = draw(trade_rows(max_size=max_size))
    fills = draw(st.lists(st.integers(1, 4), min_size=len(rows), max_size=len(rows)))
    trades, first_trade_id = [], 7_000_000
    for agg_trade_id, ((time_us, price, qty, maker), n) in enumerate(zip(rows, fills, strict=True)):
        trades.append(
            AggTrade(
                SYMBOL,
                1_000 + agg_trade_id,
                price,
                qty,
                first_trade_id,
                first_trade_id + n - 1,
                time_us,
                maker,
            )
        )
        first_trade_id += n
    return trades
