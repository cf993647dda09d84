"""silver.bars_1s: the SQL bars equal the Python bars exactly, on every column."""

from __future__ import annotations

import duckdb
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from btc_platform_tests.dbt_like_sql.agg_trades import (
    INGEST_US,
    START_SEC,
    START_US,
    SYMBOL,
    TIMESTAMP_US,
    BronzeRow,
    agg_trade,
    agg_trade_streams,
    bronze_agg_trades,
)
from dbt_like_sql import SqlProject
from realtime.features.bars import NONE, Bar, BarBuilder, bars_from_tables
from realtime.market.events import AggTrade

S = 1_000_000
PRICE = 98_000 * 10**8
BARS_1S = pa.schema(
    [
        ("symbol", pa.string()),
        ("ts", TIMESTAMP_US),
        ("ts_sec", pa.int64()),
        ("n_trades", pa.int64()),
        ("buy_qty_e8", pa.int64()),
        ("sell_qty_e8", pa.int64()),
        ("notional_e16", pa.decimal128(38, 0)),
        ("first_price_e8", pa.int64()),
        ("last_price_e8", pa.int64()),
        ("max_qty_e8", pa.int64()),
        ("last_trade_time", TIMESTAMP_US),
        ("first_trade_id", pa.int64()),
        ("last_trade_id", pa.int64()),
        ("bid_price_e8", pa.int64()),
        ("ask_price_e8", pa.int64()),
        ("bid_qty_e8", pa.int64()),
        ("ask_qty_e8", pa.int64()),
        ("source", pa.string()),
        ("ingest_ts", TIMESTAMP_US),
        ("version", pa.int32()),
    ]
)
"""The contract of ``silver.bars_1s``."""


def sql_bars(project: SqlProject, con, bronze: pa.Table, start_sec: int, end_sec: int) -> pa.Table:
    """silver.bars_1s of ``[start_sec, end_sec)``, silver.trades computed on the way."""
    results = project.run(
        con,
        ["silver.bars_1s"],
        {"bronze.agg_trades": bronze},
        {
            "window_start_us": start_sec * S,
            "window_end_us": end_sec * S,
            "window_start_sec": start_sec,
            "window_end_sec": end_sec,
            "symbol": SYMBOL,
            "ingest_ts_us": INGEST_US,
        },
        with_ancestors=True,
    )
    return results["silver.bars_1s"]


def as_bars(table: pa.Table) -> list[Bar]:
    """SQL bars as the Python ``Bar``: NULL becomes ``NONE``, the notional a Python int."""

    def column(name: str) -> list[int]:
        if name == "notional_e16":
            return [int(value) for value in table[name].to_pylist()]
        if name == "last_trade_time_us":
            return table["last_trade_time"].cast(pa.int64()).fill_null(NONE).to_pylist()
        return table[name].fill_null(NONE).to_pylist()

    return [Bar(*row) for row in zip(*(column(name) for name in Bar._fields), strict=True)]


def assert_bar_contract(table: pa.Table, start_sec: int, end_sec: int) -> None:
    assert table.schema.names == BARS_1S.names
    assert table.schema.types == BARS_1S.types
    assert table["ts_sec"].to_pylist() == list(range(start_sec, end_sec))
    assert table["ts"].cast(pa.int64()).to_pylist() == [s * S for s in range(start_sec, end_sec)]
    assert set(table["symbol"].to_pylist()) <= {SYMBOL}
    assert set(table["source"].to_pylist()) <= {"silver.trades"}
    assert set(table["ingest_ts"].cast(pa.int64()).to_pylist()) <= {INGEST_US}
    assert set(table["version"].to_pylist()) <= {1}


def expected_bars(trades: list[AggTrade], start_sec: int, end_sec: int) -> list[Bar]:
    reference = bars_from_tables(
        bronze_agg_trades(trades), start_sec=start_sec, end_sec=end_sec - 1
    )
    return list(reference.rows())


def test_one_example_exactly(project: SqlProject, con: duckdb.DuckDBPyConnection):
    big = 50 * 10**8  # 50 BTC: one trade's notional is 4.9e22, beyond 2**63
    trades = [
        agg_trade(1, START_US + 10, PRICE, big, fills=3),
        agg_trade(2, START_US + 20, PRICE + 10**6, big, fills=1, is_buyer_maker=True),
        agg_trade(3, START_US + 999_999, PRICE - 10**6, 7, fills=2),
        # second 1 is empty
        agg_trade(4, START_US + 2 * S, PRICE, 10**5, fills=1, is_buyer_maker=True),
    ]
    # Another symbol, and the same trades again from REST, change nothing.
    other = agg_trade(9, START_US + 30, PRICE, big, symbol="ETHUSDT")
    rest = [BronzeRow(trade, "rest", INGEST_US + S) for trade in trades]
    table = sql_bars(
        project, con, bronze_agg_trades([*trades, other, *rest]), START_SEC, START_SEC + 4
    )
    assert_bar_contract(table, START_SEC, START_SEC + 4)
    bars = as_bars(table)
    assert bars[0] == Bar(
        ts_sec=START_SEC,
        n_trades=6,
        buy_qty_e8=big + 7,
        sell_qty_e8=big,
        notional_e16=PRICE * big + (PRICE + 10**6) * big + (PRICE - 10**6) * 7,
        first_price_e8=PRICE,
        last_price_e8=PRICE - 10**6,
        max_qty_e8=big,
        last_trade_time_us=START_US + 999_999,
        first_trade_id=10,
        last_trade_id=31,
        bid_price_e8=NONE,
        ask_price_e8=NONE,
        bid_qty_e8=NONE,
        ask_qty_e8=NONE,
    )
    assert bars[0].notional_e16 > 2**63
    assert bars == expected_bars(trades, START_SEC, START_SEC + 4)


def test_the_same_bars_as_the_live_builder_fed_one_trade_at_a_time(
    project: SqlProject, con: duckdb.DuckDBPyConnection
):
    trades = [
        agg_trade(1, START_US + 5, PRICE, 3 * 10**8, fills=2),
        agg_trade(2, START_US + 700_000, PRICE + 10**6, 10**5, is_buyer_maker=True),
        agg_trade(3, START_US + 3 * S + 1, PRICE, 40 * 10**8, fills=4),
        agg_trade(4, START_US + 3 * S + 2, PRICE - 10**6, 2, is_buyer_maker=True),
        agg_trade(5, START_US + 4 * S + 999_999, PRICE, 9),
    ]
    builder = BarBuilder()
    live = [bar for trade in trades for bar in builder.add_agg_trade(trade)]
    live += builder.close_through(START_SEC + 5)
    table = sql_bars(project, con, bronze_agg_trades(trades), START_SEC, START_SEC + 6)
    assert as_bars(table) == live


@settings(max_examples=20, deadline=None)
@given(
    trades=agg_trade_streams(),
    start_shift=st.integers(min_value=-3, max_value=3),
    end_shift=st.integers(min_value=-3, max_value=3),
    duplicated=st.sets(st.integers(min_value=0, max_value=59)),
)
def test_the_same_bars_as_bars_from_tables(
    project: SqlProject,
    trades: list[AggTrade],
    start_shift: int,
    end_shift: int,
    duplicated: set[int],
):
    """Any window over any stream: cut trades at both ends, empty seconds, re-ingested rows."""
    start_sec = trades[0].transact_time_us // S + start_shift
    end_sec = max(trades[-1].transact_time_us // S + 1 + end_shift, start_sec + 1)
    again = [BronzeRow(trades[i], "live", INGEST_US + S) for i in duplicated if i < len(trades)]
    with duckdb.connect() as con:
        table = sql_bars(project, con, bronze_agg_trades([*trades, *again]), start_sec, end_sec)
    assert_bar_contract(table, start_sec, end_sec)
    assert as_bars(table) == expected_bars(trades, start_sec, end_sec)
