"""Realistic lake tables built from a seeded synthetic market, for quality tests and benches.

``market_tables`` runs the project's own pipeline pieces (synthetic trades, per-second bars,
the lake's feature step, labels) and lays the results out in the silver and gold tables'
declared schemas (``btc_platform.lakehouse.tables``), with the lake's conventions: Arrow
nulls for missing ints (a second without trades has no price), NaN for undefined features,
the ``source``/``ingest_ts``/``version`` envelope on every row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from btc_platform.lakehouse import tables
from btc_platform.lakehouse.features import features_table
from realtime.features.bars import NONE, US_PER_SECOND, Bars, bars_from_tables
from realtime.features.contract import CONTRACT_V1
from realtime.features.engine import batch_features
from realtime.features.labels import labels_v1, training_mask
from realtime.market.arrow_schemas import TIMESTAMP_US
from realtime.sim.synthetic_trades import TICK_E8, synthetic_trades

SYMBOL = "BTCUSDT"
START_SEC = 1_767_225_600
"""2026-01-01 00:00:00 UTC."""
INGEST_US = (START_SEC + 2 * 86_400) * US_PER_SECOND


@dataclass(frozen=True)
class MarketTables:
    trades: pa.Table
    """``silver.trades``"""
    bars_1s: pa.Table
    features_1s: pa.Table
    training_1s: pa.Table


def market_tables(
    seconds: int, *, trades_per_second: float = 3.0, seed: int = 7, quoted_share: float = 0.5
) -> MarketTables:
    """The four tables of one synthetic stretch of ``seconds`` seconds.

    The market is a normal one: trades in nearly every second (``silent_share`` 0.1 %), a
    best bid/ask one tick around the last price in ``quoted_share`` of the seconds.
    """
    raw = synthetic_trades(
        int(seconds * trades_per_second),
        seed=seed,
        start_sec=START_SEC,
        seconds=seconds,
        silent_share=0.001,
    )
    trades = _agg_trades(raw, seed)
    quotes = _quotes(raw, quoted_share, seed)
    bars = bars_from_tables(trades, quotes, start_sec=START_SEC, end_sec=START_SEC + seconds - 1)
    bars_1s = _silver_bars(bars)
    return MarketTables(
        trades=_silver_trades(trades, seed),
        bars_1s=bars_1s,
        features_1s=features_table(
            bars_1s,
            symbol=SYMBOL,
            start_sec=START_SEC,
            end_sec=START_SEC + seconds,
            ingest_ts_us=INGEST_US,
        ),
        training_1s=_gold_training(bars, batch_features(bars), labels_v1(bars)),
    )


def _agg_trades(raw: pa.Table, seed: int) -> pa.Table:
    """Raw trades grouped as Binance aggregates them: fills of one taker order at one price."""
    rng = np.random.default_rng(seed + 1)
    n = raw.num_rows
    price = raw["price_e8"].to_numpy()
    maker = raw["is_buyer_maker"].to_numpy(zero_copy_only=False)
    # A new aggregate starts where price or side changes, and at random elsewhere.
    starts = np.flatnonzero(
        np.r_[True, (np.diff(price) != 0) | (maker[1:] != maker[:-1]) | (rng.random(n - 1) < 0.6)]
    )
    ends = np.r_[starts[1:], n] - 1
    trade_id = raw["trade_id"].to_numpy()
    qty = np.add.reduceat(raw["qty_e8"].to_numpy(), starts)
    return pa.table(
        {
            "agg_trade_id": np.arange(3_000_000_000, 3_000_000_000 + len(starts), dtype=np.int64),
            "price_e8": price[starts],
            "qty_e8": qty,
            "first_trade_id": trade_id[starts],
            "last_trade_id": trade_id[ends],
            "transact_time": raw["transact_time"].take(starts),
            "is_buyer_maker": maker[starts],
            "is_best_match": np.ones(len(starts), dtype=bool),
        }
    )


def _quotes(raw: pa.Table, quoted_share: float, seed: int) -> pa.Table:
    """One best bid/ask event one tick around a trade price, in some of the seconds."""
    rng = np.random.default_rng(seed + 2)
    chosen = np.flatnonzero(rng.random(raw.num_rows) < quoted_share / 3)
    price = raw["price_e8"].to_numpy()[chosen]
    n = len(chosen)
    return pa.table(
        {
            "event_time": raw["transact_time"].take(chosen),
            "bid_price_e8": price - TICK_E8,
            "ask_price_e8": price + TICK_E8,
            "bid_qty_e8": rng.integers(1, 500, n) * 100_000,
            "ask_qty_e8": rng.integers(1, 500, n) * 100_000,
        }
    )


def _envelope(n: int, source: str | list[str]) -> dict[str, pa.Array]:
    sources = [source] * n if isinstance(source, str) else source
    return {
        "source": pa.array(sources, pa.string()),
        "ingest_ts": pa.array(np.full(n, INGEST_US), TIMESTAMP_US),
        "version": pa.array(np.full(n, tables.RECORD_VERSION, dtype=np.int32)),
    }


def _silver_trades(trades: pa.Table, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed + 3)
    n = trades.num_rows
    sources = rng.choice(np.array(["archive", "rest", "live"]), n).tolist()
    rows = pa.table(
        {
            "symbol": pa.array([SYMBOL] * n),
            **{name: trades[name] for name in trades.column_names},
            **_envelope(n, sources),
            "n_sources": pa.array(rng.integers(1, 4, n).astype(np.int32)),
        }
    )
    return rows.cast(tables.SILVER_TRADES.schema)


def _nullable(values: np.ndarray) -> pa.Array:
    """A bar column whose ``NONE`` marker becomes an Arrow null."""
    return pa.array(values, pa.int64(), mask=values == NONE)


def _grid(bars: Bars) -> dict[str, pa.Array]:
    ts_sec = bars.ts_sec
    return {
        "symbol": pa.array([SYMBOL] * len(bars)),
        "ts": pa.array(ts_sec * US_PER_SECOND, TIMESTAMP_US),
        "ts_sec": pa.array(ts_sec),
    }


def _silver_bars(bars: Bars) -> pa.Table:
    nullable = (
        "first_price_e8",
        "last_price_e8",
        "first_trade_id",
        "last_trade_id",
        "bid_price_e8",
        "ask_price_e8",
        "bid_qty_e8",
        "ask_qty_e8",
    )
    rows = pa.table(
        {
            **_grid(bars),
            "n_trades": pa.array(bars.n_trades),
            "buy_qty_e8": pa.array(bars.buy_qty_e8),
            "sell_qty_e8": pa.array(bars.sell_qty_e8),
            "notional_e16": pa.array(bars.notional_e16, tables.NOTIONAL_E16),
            "max_qty_e8": pa.array(bars.max_qty_e8),
            "last_trade_time": _nullable(bars.last_trade_time_us).cast(TIMESTAMP_US),
            **{name: _nullable(getattr(bars, name)) for name in nullable},
            **_envelope(len(bars), "silver.trades"),
        }
    )
    return rows.select(tables.SILVER_BARS_1S.schema.names).cast(tables.SILVER_BARS_1S.schema)


def _gold_training(bars: Bars, features: np.ndarray, labels: np.ndarray) -> pa.Table:
    keep = training_mask(features, labels, CONTRACT_V1.model_input_indices)
    grid = pa.table(_grid(bars)).filter(pa.array(keep))
    n = grid.num_rows
    rows = pa.table(
        {
            **{name: grid[name] for name in grid.column_names},
            "contract_version": pa.array(np.full(n, CONTRACT_V1.version, dtype=np.int32)),
            **{name: features[keep, index] for index, name in enumerate(CONTRACT_V1.names)},
            CONTRACT_V1.label: labels[keep],
            **_envelope(n, "silver.features_1s"),
        }
    )
    return rows.cast(tables.GOLD_TRAINING_1S.schema)
