"""silver.trades: one row per aggregate trade, whichever sources and re-ingests had it."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from btc_platform_tests.dbt_like_sql.agg_trades import (
    BRONZE_AGG_TRADES,
    INGEST_US,
    START_US,
    BronzeRow,
    agg_trade,
    bronze_agg_trades,
)
from dbt_like_sql import SqlProject

S = 1_000_000
WINDOW = {"window_start_us": START_US, "window_end_us": START_US + 10 * S}


def silver_trades(project: SqlProject, con, rows, window=WINDOW) -> pa.Table:
    bronze = bronze_agg_trades(rows)
    return project.run(con, ["silver.trades"], {"bronze.agg_trades": bronze}, window)[
        "silver.trades"
    ]


def picked(table: pa.Table) -> dict[int, tuple[str, int, int]]:
    """agg_trade_id: (source, version, n_sources) of the row each id kept."""
    rows = table.select(["agg_trade_id", "source", "version", "n_sources"]).to_pylist()
    return {row["agg_trade_id"]: (row["source"], row["version"], row["n_sources"]) for row in rows}


def test_the_columns_are_bronzes_plus_n_sources(
    project: SqlProject, con: duckdb.DuckDBPyConnection
):
    table = silver_trades(project, con, [agg_trade(1, START_US)])
    assert table.schema.names == [*BRONZE_AGG_TRADES.names, "n_sources"]
    assert [field.type for field in table.schema][:-1] == BRONZE_AGG_TRADES.types
    assert table.schema.field("n_sources").type == pa.int64()


def test_duplicates_collapse_by_source_priority_then_newest_ingest(
    project: SqlProject, con: duckdb.DuckDBPyConnection
):
    one, two, three, four = (agg_trade(i, START_US + i * 1000) for i in (1, 2, 3, 4))
    later = INGEST_US + 3_600 * S
    rows = [
        # 1: the archive wins over REST and live, even when they were ingested later.
        BronzeRow(one, "live", later, 1),
        BronzeRow(one, "archive", INGEST_US, 2),
        BronzeRow(one, "rest", later, 3),
        # 2: REST wins over live; of two REST ingests the newer wins.
        BronzeRow(two, "rest", INGEST_US, 1),
        BronzeRow(two, "live", later, 2),
        BronzeRow(two, "rest", later, 3),
        # 3: a re-ingest of the archive (the same source twice) is one source.
        BronzeRow(three, "archive", INGEST_US, 1),
        BronzeRow(three, "archive", later, 2),
        # 4: only live saw it.
        BronzeRow(four, "live", INGEST_US, 1),
    ]
    table = silver_trades(project, con, rows)
    assert picked(table) == {
        1: ("archive", 2, 3),
        2: ("rest", 3, 2),
        3: ("archive", 2, 1),
        4: ("live", 1, 1),
    }
    assert table["agg_trade_id"].to_pylist() == [1, 2, 3, 4]


def test_the_choice_does_not_depend_on_row_order(
    project: SqlProject, con: duckdb.DuckDBPyConnection
):
    trade = agg_trade(1, START_US)
    rows = [BronzeRow(trade, "rest", INGEST_US, version) for version in (1, 2, 3)]
    first = silver_trades(project, con, rows)
    assert first == silver_trades(project, con, rows[::-1])
    assert picked(first) == {1: ("rest", 3, 1)}


def test_one_id_of_two_symbols_is_two_trades(project: SqlProject, con: duckdb.DuckDBPyConnection):
    rows = [agg_trade(1, START_US), agg_trade(1, START_US, symbol="ETHUSDT")]
    table = silver_trades(project, con, rows)
    assert table.select(["symbol", "agg_trade_id"]).to_pylist() == [
        {"symbol": "BTCUSDT", "agg_trade_id": 1},
        {"symbol": "ETHUSDT", "agg_trade_id": 1},
    ]


def test_the_window_is_half_open_on_transact_time(
    project: SqlProject, con: duckdb.DuckDBPyConnection
):
    times = {1: START_US - 1, 2: START_US, 3: START_US + 10 * S - 1, 4: START_US + 10 * S}
    table = silver_trades(project, con, [agg_trade(i, time) for i, time in times.items()])
    assert table["agg_trade_id"].to_pylist() == [2, 3]
    assert table["transact_time"].cast(pa.int64()).to_pylist() == [times[2], times[3]]


def test_values_pass_through_exactly(project: SqlProject, con: duckdb.DuckDBPyConnection):
    trade = agg_trade(7, START_US + 123_456, 98_765_43210000, 5 * 10**9, fills=3)
    table = silver_trades(project, con, [BronzeRow(trade, "rest", INGEST_US + 1, 4)])
    (row,) = table.to_pylist()
    assert (
        row["price_e8"],
        row["qty_e8"],
        row["first_trade_id"],
        row["last_trade_id"],
        row["is_buyer_maker"],
        row["is_best_match"],
    ) == (98_765_43210000, 5 * 10**9, 70, 72, False, True)
    assert table["ingest_ts"].cast(pa.int64()).to_pylist() == [INGEST_US + 1]
