"""silver.features_1s from silver.bars_1s: the live engine's vectors, bit for bit."""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from btc_platform.lakehouse.features import (
    SOURCE,
    BarsNotContiguous,
    bars_from_silver,
    features_table,
)
from btc_platform.lakehouse.tables import RECORD_VERSION, SILVER_BARS_1S, SILVER_FEATURES_1S
from realtime.features.bars import NONE, US_PER_SECOND, Bars, bars_from_tables
from realtime.features.contract import CONTRACT_V1
from realtime.features.engine import batch_features, carried_last_price
from realtime.market.arrow_schemas import AGG_TRADES, TIMESTAMP_US
from realtime.sim.synthetic_trades import TICK_E8, synthetic_trades

START_SEC = 1_767_225_600  # 2026-01-01T00:00:00Z
SECONDS = 1_800
INGEST_US = (START_SEC + 86_400) * US_PER_SECOND
WARMUP_S = 600
"""Bars given before a window: ten times the contract's longest window (60 s)."""
NULLABLE = (
    "first_price_e8",
    "last_price_e8",
    "first_trade_id",
    "last_trade_id",
    "bid_price_e8",
    "ask_price_e8",
    "bid_qty_e8",
    "ask_qty_e8",
)


def agg_trades(raw: pa.Table) -> pa.Table:
    """Raw trades grouped as Binance aggregates them: runs of one side at one price."""
    price = raw["price_e8"].to_numpy()
    maker = raw["is_buyer_maker"].to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(np.r_[True, (np.diff(price) != 0) | (maker[1:] != maker[:-1])])
    ends = np.r_[starts[1:], raw.num_rows] - 1
    trade_id = raw["trade_id"].to_numpy()
    n = len(starts)
    return pa.table(
        {
            "agg_trade_id": np.arange(3_500_000_000, 3_500_000_000 + n, dtype=np.int64),
            "price_e8": price[starts],
            "qty_e8": np.add.reduceat(raw["qty_e8"].to_numpy(), starts),
            "first_trade_id": trade_id[starts],
            "last_trade_id": trade_id[ends],
            "transact_time": raw["transact_time"].take(starts),
            "is_buyer_maker": maker[starts],
            "is_best_match": np.ones(n, dtype=bool),
        },
        schema=AGG_TRADES,
    )


def quotes(raw: pa.Table, seed: int) -> pa.Table:
    """A best bid/ask one tick around some of the trades (about one second in four)."""
    rng = np.random.default_rng(seed)
    chosen = np.flatnonzero(rng.random(raw.num_rows) < 0.1)
    price = raw["price_e8"].to_numpy()[chosen]
    return pa.table(
        {
            "event_time": raw["transact_time"].take(chosen),
            "bid_price_e8": price - TICK_E8,
            "ask_price_e8": price + TICK_E8,
            "bid_qty_e8": rng.integers(1, 500, len(chosen)) * 100_000,
            "ask_qty_e8": rng.integers(1, 500, len(chosen)) * 100_000,
        }
    )


def silver_bars(bars: Bars) -> pa.Table:
    """``bars`` as silver.bars_1s rows: SQL's NULL where the engine has ``NONE``."""

    def nullable(values: np.ndarray, type_: pa.DataType | None = None) -> pa.Array:
        return pa.array(values, pa.int64(), mask=values == NONE).cast(type_ or pa.int64())

    n = len(bars)
    ts_sec = bars.ts_sec
    return pa.table(
        {
            "symbol": pa.array(["BTCUSDT"] * n),
            "ts": pa.array(ts_sec * US_PER_SECOND, pa.int64()).cast(TIMESTAMP_US),
            "ts_sec": ts_sec,
            "n_trades": bars.n_trades,
            "buy_qty_e8": bars.buy_qty_e8,
            "sell_qty_e8": bars.sell_qty_e8,
            "notional_e16": pa.array(bars.notional_e16, pa.decimal128(38, 0)),
            "first_price_e8": nullable(bars.first_price_e8),
            "last_price_e8": nullable(bars.last_price_e8),
            "max_qty_e8": bars.max_qty_e8,
            "last_trade_time": nullable(bars.last_trade_time_us, TIMESTAMP_US),
            **{name: nullable(getattr(bars, name)) for name in NULLABLE[2:]},
            "source": pa.array(["silver.trades"] * n),
            "ingest_ts": pa.array(np.full(n, INGEST_US), pa.int64()).cast(TIMESTAMP_US),
            "version": pa.array(np.ones(n, dtype=np.int32)),
        }
    ).cast(SILVER_BARS_1S.schema)


@pytest.fixture(scope="module")
def bars() -> Bars:
    """Half an hour of a synthetic market, with silent runs and unquoted seconds."""
    raw = synthetic_trades(3 * SECONDS, seed=11, start_sec=START_SEC, seconds=SECONDS)
    return bars_from_tables(
        agg_trades(raw), quotes(raw, 12), start_sec=START_SEC, end_sec=START_SEC + SECONDS - 1
    )


@pytest.fixture(scope="module")
def bars_1s(bars) -> pa.Table:
    return silver_bars(bars)


def from_second(table: pa.Table, first_sec: int) -> pa.Table:
    return table.filter(pc.greater_equal(table["ts_sec"], first_sec))


def vectors(features: pa.Table) -> np.ndarray:
    """The feature columns as one float64 matrix, row per second."""
    return np.column_stack([features[name].to_numpy() for name in CONTRACT_V1.names])


def assert_same_bits(actual: np.ndarray, expected: np.ndarray) -> None:
    """Equal float64 bit patterns: NaN where NaN, and every other value exactly."""
    assert actual.shape == expected.shape
    assert np.array_equal(actual.view(np.int64), expected.view(np.int64))


# -- bars_from_silver ----------------------------------------------------------------------------


def test_the_test_bars_have_the_cases_the_conversion_must_handle(bars, bars_1s):
    assert bars_1s["last_price_e8"].null_count > 0  # seconds without a trade
    assert bars_1s["bid_price_e8"].null_count > 0  # seconds without a quote
    assert bars_1s["bid_price_e8"].null_count < bars_1s.num_rows
    assert max(bars.notional_e16) > np.iinfo(np.int64).max  # beyond int64


def test_silver_bars_convert_back_to_the_engines_bars(bars, bars_1s):
    converted = bars_from_silver(bars_1s)
    assert converted.start_sec == bars.start_sec
    for field in dataclasses.fields(Bars):
        if field.name in ("start_sec", "notional_e16"):
            continue
        column = getattr(converted, field.name)
        assert column.dtype == np.int64, field.name
        assert np.array_equal(column, getattr(bars, field.name)), field.name


def test_null_becomes_none_and_decimals_become_python_ints(bars_1s):
    converted = bars_from_silver(bars_1s)
    unpriced = np.flatnonzero(pc.is_null(bars_1s["last_price_e8"]).to_numpy(zero_copy_only=False))
    assert len(unpriced) > 0
    for name in (*NULLABLE, "last_trade_time_us"):
        column = getattr(converted, name)
        source = "last_trade_time" if name == "last_trade_time_us" else name
        nulls = pc.is_null(bars_1s[source]).to_numpy(zero_copy_only=False)
        assert np.all(column[nulls] == NONE), name
        assert np.all(column[~nulls] >= 0), name
    assert np.all(converted.last_trade_time_us[unpriced] == NONE)
    assert all(type(value) is int for value in converted.notional_e16)
    assert converted.notional_e16 == [int(v) for v in bars_1s["notional_e16"].to_pylist()]


def test_rows_in_any_order_are_sorted_by_second(bars, bars_1s):
    shuffled = bars_1s.take(np.random.default_rng(3).permutation(bars_1s.num_rows))
    converted = bars_from_silver(shuffled)
    assert converted.start_sec == bars.start_sec
    assert np.array_equal(converted.last_price_e8, bars.last_price_e8)
    assert converted.notional_e16 == bars.notional_e16


@pytest.mark.parametrize("kind", ["missing", "duplicated"])
def test_bars_that_are_not_one_per_second_raise(bars_1s, kind):
    rows = np.arange(bars_1s.num_rows)
    rows = np.delete(rows, 700) if kind == "missing" else np.insert(rows, 700, 700)
    with pytest.raises(BarsNotContiguous, match=r"not one per second"):
        bars_from_silver(bars_1s.take(rows))


# -- features_table ------------------------------------------------------------------------------


def test_features_equal_the_engines_bit_for_bit_in_the_window(bars, bars_1s):
    start_sec, end_sec = START_SEC + WARMUP_S, START_SEC + SECONDS - 100
    features = features_table(
        bars_1s, symbol="BTCUSDT", start_sec=start_sec, end_sec=end_sec, ingest_ts_us=INGEST_US
    )
    keep = slice(start_sec - START_SEC, end_sec - START_SEC)
    expected = batch_features(bars)[keep]
    assert features.schema == SILVER_FEATURES_1S.schema
    assert features["ts_sec"].to_pylist() == list(range(start_sec, end_sec))
    assert pc.cast(features["ts"], pa.int64()).to_pylist() == [
        s * US_PER_SECOND for s in range(start_sec, end_sec)
    ]
    assert_same_bits(vectors(features), expected)
    assert np.isnan(expected).any()  # undefined features stay NaN, not null
    assert all(features[name].null_count == 0 for name in CONTRACT_V1.names)
    _, _, _, log_price = carried_last_price(bars)
    assert_same_bits(features["log_price"].to_numpy(), log_price[keep])


def test_feature_rows_carry_the_envelope(bars_1s):
    features = features_table(
        bars_1s,
        symbol="BTCUSDT",
        start_sec=START_SEC + 60,
        end_sec=START_SEC + 70,
        ingest_ts_us=INGEST_US,
    )
    assert features.num_rows == 10
    assert set(features["symbol"].to_pylist()) == {"BTCUSDT"}
    assert set(features["contract_version"].to_pylist()) == {CONTRACT_V1.version}
    assert set(features["source"].to_pylist()) == {SOURCE}
    assert set(pc.cast(features["ingest_ts"], pa.int64()).to_pylist()) == {INGEST_US}
    assert set(features["version"].to_pylist()) == {RECORD_VERSION}


def test_with_a_full_warm_up_a_window_equals_one_continuous_run(bars, bars_1s):
    continuous = batch_features(bars)
    start_sec, end_sec = START_SEC + 1_200, START_SEC + 1_500
    warmed = features_table(
        from_second(bars_1s, start_sec - WARMUP_S),
        symbol="BTCUSDT",
        start_sec=start_sec,
        end_sec=end_sec,
        ingest_ts_us=INGEST_US,
    )
    expected = continuous[start_sec - START_SEC : end_sec - START_SEC]
    assert_same_bits(vectors(warmed), expected)
    # Without the warm-up the first minute's windows are partial: the warm-up is what matters.
    cold = features_table(
        from_second(bars_1s, start_sec),
        symbol="BTCUSDT",
        start_sec=start_sec,
        end_sec=end_sec,
        ingest_ts_us=INGEST_US,
    )
    assert not np.array_equal(vectors(cold).view(np.int64), expected.view(np.int64))
    assert np.array_equal(vectors(cold)[60:].view(np.int64), expected[60:].view(np.int64))


def test_no_bars_give_no_feature_rows():
    features = features_table(
        SILVER_BARS_1S.schema.empty_table(),
        symbol="BTCUSDT",
        start_sec=START_SEC,
        end_sec=START_SEC + 60,
        ingest_ts_us=INGEST_US,
    )
    assert features.num_rows == 0
    assert features.schema == SILVER_FEATURES_1S.schema
