"""silver.features_1s from silver.bars_1s through the feature contract's engine.

The engine is the one the live service runs (``realtime.features``), so the lake's features
are the live ones by construction; the parity tests prove the two paths equal bit for bit.

The lake's feature stream starts afresh at every UTC midnight: a day's vectors read only
that day's bars, so a partition computes alone, in any order and in any backfill batch, to
the same bits. The price of that independence is the contract's warm-up, once a day: the
windows reaching before midnight are incomplete and null (at most the first 59 seconds),
and those rows are not training rows.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from btc_platform.lakehouse.tables import RECORD_VERSION, SILVER_FEATURES_1S
from realtime.features.bars import NONE, US_PER_SECOND, Bars
from realtime.features.contract import CONTRACT_V1
from realtime.features.engine import batch_features, carried_last_price
from realtime.market.arrow_schemas import TIMESTAMP_US

SOURCE = "silver.bars_1s"

_INT_COLUMNS = (
    "n_trades",
    "buy_qty_e8",
    "sell_qty_e8",
    "first_price_e8",
    "last_price_e8",
    "max_qty_e8",
    "first_trade_id",
    "last_trade_id",
    "bid_price_e8",
    "ask_price_e8",
    "bid_qty_e8",
    "ask_qty_e8",
)


class BarsNotContiguous(ValueError):
    """silver.bars_1s rows that are not one per second: the bars were written incompletely."""


def bars_from_silver(bars_1s: pa.Table) -> Bars:
    """The engine's ``Bars`` from silver.bars_1s rows (consecutive seconds, sorted here).

    SQL's NULL is the engine's ``NONE`` (-1); the decimal notional becomes Python ints.
    """
    rows = bars_1s.sort_by("ts_sec")
    seconds = rows["ts_sec"].to_numpy()
    if len(seconds) and not np.array_equal(
        seconds, np.arange(seconds[0], seconds[0] + len(seconds))
    ):
        raise BarsNotContiguous(
            f"bars from {seconds[0]} to {seconds[-1]} are not one per second ({len(seconds)} rows)"
        )
    columns = {
        name: pc.fill_null(rows[name], NONE).to_numpy().astype(np.int64) for name in _INT_COLUMNS
    }
    last_time = pc.cast(rows["last_trade_time"], pa.int64())
    columns["last_trade_time_us"] = pc.fill_null(last_time, NONE).to_numpy().astype(np.int64)
    notional = [int(value) for value in rows["notional_e16"].to_pylist()]
    return Bars(start_sec=int(seconds[0]) if len(seconds) else 0, notional_e16=notional, **columns)


def features_table(
    bars_1s: pa.Table, *, symbol: str, start_sec: int, end_sec: int, ingest_ts_us: int
) -> pa.Table:
    """silver.features_1s rows for seconds ``[start_sec, end_sec)``; any bars before
    ``start_sec`` are warm-up (the stream starts at the first bar given)."""
    bars = bars_from_silver(bars_1s)
    vectors = batch_features(bars)
    _, _, _, log_price = carried_last_price(bars)
    ts_sec = bars.ts_sec
    keep = (ts_sec >= start_sec) & (ts_sec < end_sec)
    n = int(keep.sum())
    columns: dict[str, pa.Array] = {
        "symbol": pa.array([symbol] * n, pa.string()),
        "ts": pa.array(ts_sec[keep] * US_PER_SECOND, pa.int64()).cast(TIMESTAMP_US),
        "ts_sec": pa.array(ts_sec[keep], pa.int64()),
        "contract_version": pa.array([CONTRACT_V1.version] * n, pa.int32()),
    }
    for index, name in enumerate(CONTRACT_V1.names):
        columns[name] = pa.array(vectors[keep, index], pa.float64())
    columns["log_price"] = pa.array(log_price[keep], pa.float64())
    columns["source"] = pa.array([SOURCE] * n, pa.string())
    columns["ingest_ts"] = pa.array([ingest_ts_us] * n, pa.int64()).cast(TIMESTAMP_US)
    columns["version"] = pa.array([RECORD_VERSION] * n, pa.int32())
    return pa.table(columns).cast(SILVER_FEATURES_1S.schema)
