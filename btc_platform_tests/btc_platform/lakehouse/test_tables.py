"""The lakehouse's Iceberg tables on a real SQLite catalog: creation and idempotent windows."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

pytest.importorskip("pyiceberg", reason="the batch extra is not installed")

from pyiceberg.transforms import DayTransform, HourTransform

from btc_platform.lakehouse import tables
from btc_platform.lakehouse.tables import (
    BRONZE_AGG_TRADES,
    SILVER_BARS_1S,
    TABLES,
    current_snapshot_id,
    ensure_table,
    overwrite_window,
    scan_window,
)
from realtime.market.arrow_schemas import TIMESTAMP_US

HOUR = 3_600_000_000
DAY = 24 * HOUR
H0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
INGEST_US = H0 + 2 * DAY
FIRST_ID = 3_500_000_000
SYMBOL = "BTCUSDT"


def bronze_rows(
    times_us: list[int] | np.ndarray, first_id: int = FIRST_ID, symbol: str = SYMBOL
) -> pa.Table:
    """bronze.agg_trades rows of one symbol, one per time, with consecutive ids."""
    times = np.asarray(times_us, dtype=np.int64)
    n = len(times)
    return pa.table(
        {
            "symbol": pa.array([symbol] * n),
            "agg_trade_id": np.arange(first_id, first_id + n, dtype=np.int64),
            "price_e8": np.full(n, 98_000 * 10**8, dtype=np.int64) + np.arange(n),
            "qty_e8": np.full(n, 100_000, dtype=np.int64),
            "first_trade_id": np.arange(n, dtype=np.int64),
            "last_trade_id": np.arange(n, dtype=np.int64),
            "transact_time": pa.array(times, pa.int64()).cast(TIMESTAMP_US),
            "is_buyer_maker": np.arange(n) % 2 == 0,
            "is_best_match": np.ones(n, dtype=bool),
            "source": pa.array(["rest"] * n),
            "ingest_ts": pa.array(np.full(n, INGEST_US), pa.int64()).cast(TIMESTAMP_US),
            "version": pa.array(np.ones(n, dtype=np.int32)),
        }
    )


def spread_over(start_us: int, end_us: int, n: int) -> np.ndarray:
    """``n`` times evenly inside ``[start_us, end_us)``."""
    return start_us + (np.arange(n, dtype=np.int64) * (end_us - start_us)) // n


def bars_rows(times_us, *, n_trades: int) -> pa.Table:
    """silver.bars_1s rows at whole seconds, nulls where a bar has no price."""
    ts = np.asarray(times_us, dtype=np.int64)
    n = len(ts)
    nullable = pa.nulls(n, pa.int64())
    return pa.table(
        {
            "symbol": pa.array([SYMBOL] * n),
            "ts": pa.array(ts, pa.int64()).cast(TIMESTAMP_US),
            "ts_sec": ts // 1_000_000,
            "n_trades": np.full(n, n_trades, dtype=np.int64),
            "buy_qty_e8": np.zeros(n, dtype=np.int64),
            "sell_qty_e8": np.zeros(n, dtype=np.int64),
            "notional_e16": pa.array([10**30] * n, tables.NOTIONAL_E16),
            "first_price_e8": nullable,
            "last_price_e8": nullable,
            "max_qty_e8": np.zeros(n, dtype=np.int64),
            "last_trade_time": pa.nulls(n, TIMESTAMP_US),
            "first_trade_id": nullable,
            "last_trade_id": nullable,
            "bid_price_e8": nullable,
            "ask_price_e8": nullable,
            "bid_qty_e8": nullable,
            "ask_qty_e8": nullable,
            "source": pa.array(["silver.trades"] * n),
            "ingest_ts": pa.array(np.full(n, INGEST_US), pa.int64()).cast(TIMESTAMP_US),
            "version": pa.array(np.ones(n, dtype=np.int32)),
        }
    )


def ids_in(catalog, start_us: int, end_us: int) -> list[int]:
    rows = scan_window(catalog, BRONZE_AGG_TRADES, start_us, end_us)
    return sorted(rows["agg_trade_id"].to_pylist())


def count_rows(catalog, spec) -> int:
    return catalog.load_table(spec.identifier).scan().to_arrow().num_rows


@pytest.fixture
def catalog(iceberg_catalog):
    for namespace in ("bronze", "silver", "gold"):
        iceberg_catalog.create_namespace_if_not_exists(namespace)
    return iceberg_catalog


# -- ensure_table --------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", TABLES, ids=lambda spec: spec.qualified_name)
def test_ensure_table_creates_the_table_partitioned_by_its_time_column(catalog, spec):
    table = ensure_table(catalog, spec)
    assert catalog.table_exists(spec.identifier)
    assert table.schema().as_arrow().names == spec.schema.names
    if spec.partition is None:
        assert table.spec().fields == ()
        return
    (field,) = table.spec().fields
    assert field.transform == spec.partition
    assert field.source_id == table.schema().find_field(spec.time_column).field_id


def test_the_tables_partition_trades_by_hour_seconds_by_day_and_models_not_at_all():
    partitions = {spec.qualified_name: spec.partition for spec in TABLES}
    assert partitions == {
        "bronze.agg_trades": HourTransform(),
        "silver.trades": HourTransform(),
        "silver.bars_1s": DayTransform(),
        "silver.features_1s": DayTransform(),
        "gold.training_1s": DayTransform(),
        "ml.model_registry": None,
    }


def test_ensure_table_is_idempotent(catalog):
    first = ensure_table(catalog, BRONZE_AGG_TRADES)
    overwrite_window(
        catalog, BRONZE_AGG_TRADES, bronze_rows([H0 + 1]), H0, H0 + HOUR, symbol=SYMBOL
    )
    again = ensure_table(catalog, BRONZE_AGG_TRADES)
    assert again.metadata.table_uuid == first.metadata.table_uuid
    assert ids_in(catalog, H0, H0 + HOUR) == [FIRST_ID]  # the data survived


# -- overwrite_window ----------------------------------------------------------------------------


def test_overwriting_a_window_twice_leaves_one_copy_in_a_new_snapshot(catalog):
    rows = bronze_rows(spread_over(H0, H0 + HOUR, 50))
    first = overwrite_window(catalog, BRONZE_AGG_TRADES, rows, H0, H0 + HOUR, symbol=SYMBOL)
    second = overwrite_window(catalog, BRONZE_AGG_TRADES, rows, H0, H0 + HOUR, symbol=SYMBOL)
    assert (first.rows, second.rows) == (50, 50)
    assert first.snapshot_id is not None
    assert second.snapshot_id != first.snapshot_id
    assert second.snapshot_id == current_snapshot_id(catalog, BRONZE_AGG_TRADES)
    assert count_rows(catalog, BRONZE_AGG_TRADES) == 50
    assert ids_in(catalog, H0, H0 + HOUR) == list(range(FIRST_ID, FIRST_ID + 50))


def test_an_overwrite_replaces_the_old_rows_of_the_window(catalog):
    overwrite_window(
        catalog, BRONZE_AGG_TRADES, bronze_rows([H0 + 1, H0 + 2]), H0, H0 + HOUR, symbol=SYMBOL
    )
    replacement = bronze_rows([H0 + 5, H0 + 6, H0 + 7], first_id=FIRST_ID + 100)
    overwrite_window(catalog, BRONZE_AGG_TRADES, replacement, H0, H0 + HOUR, symbol=SYMBOL)
    assert ids_in(catalog, H0, H0 + HOUR) == [FIRST_ID + 100, FIRST_ID + 101, FIRST_ID + 102]


@pytest.mark.parametrize(
    "times", [[H0 - 1, H0 + 10], [H0 + 10, H0 + HOUR]], ids=["before start", "at end"]
)
def test_rows_outside_the_window_are_refused_before_any_commit(catalog, times):
    overwrite_window(
        catalog, BRONZE_AGG_TRADES, bronze_rows([H0 + 1]), H0, H0 + HOUR, symbol=SYMBOL
    )
    before = current_snapshot_id(catalog, BRONZE_AGG_TRADES)
    with pytest.raises(ValueError, match=r"fall outside the window"):
        overwrite_window(
            catalog, BRONZE_AGG_TRADES, bronze_rows(times), H0, H0 + HOUR, symbol=SYMBOL
        )
    assert current_snapshot_id(catalog, BRONZE_AGG_TRADES) == before
    assert ids_in(catalog, H0 - HOUR, H0 + 2 * HOUR) == [FIRST_ID]


def test_rows_outside_the_window_do_not_even_create_the_table(catalog):
    with pytest.raises(ValueError, match=r"fall outside the window"):
        overwrite_window(
            catalog, BRONZE_AGG_TRADES, bronze_rows([H0 + HOUR]), H0, H0 + HOUR, symbol=SYMBOL
        )
    assert current_snapshot_id(catalog, BRONZE_AGG_TRADES) is None


def test_an_empty_window_is_refused(catalog):
    with pytest.raises(ValueError, match="empty window"):
        overwrite_window(catalog, BRONZE_AGG_TRADES, bronze_rows([]), H0, H0, symbol=SYMBOL)


def test_an_empty_overwrite_deletes_the_window(catalog):
    overwrite_window(
        catalog, BRONZE_AGG_TRADES, bronze_rows([H0 + 1, H0 + 2]), H0, H0 + HOUR, symbol=SYMBOL
    )
    write = overwrite_window(
        catalog, BRONZE_AGG_TRADES, bronze_rows([]), H0, H0 + HOUR, symbol=SYMBOL
    )
    assert write.rows == 0
    assert scan_window(catalog, BRONZE_AGG_TRADES, H0, H0 + HOUR).num_rows == 0
    assert count_rows(catalog, BRONZE_AGG_TRADES) == 0


def test_a_write_to_one_hour_leaves_the_neighbouring_hours_untouched(catalog):
    for hour in range(3):
        start = H0 + hour * HOUR
        rows = bronze_rows(spread_over(start, start + HOUR, 10), first_id=FIRST_ID + 10 * hour)
        overwrite_window(catalog, BRONZE_AGG_TRADES, rows, start, start + HOUR, symbol=SYMBOL)
    middle = bronze_rows(spread_over(H0 + HOUR, H0 + 2 * HOUR, 4), first_id=FIRST_ID + 500)
    overwrite_window(catalog, BRONZE_AGG_TRADES, middle, H0 + HOUR, H0 + 2 * HOUR, symbol=SYMBOL)
    assert ids_in(catalog, H0, H0 + HOUR) == list(range(FIRST_ID, FIRST_ID + 10))
    assert ids_in(catalog, H0 + HOUR, H0 + 2 * HOUR) == list(range(FIRST_ID + 500, FIRST_ID + 504))
    assert ids_in(catalog, H0 + 2 * HOUR, H0 + 3 * HOUR) == list(
        range(FIRST_ID + 20, FIRST_ID + 30)
    )


def test_a_window_of_one_symbol_leaves_the_other_symbols_rows_of_that_window(catalog):
    btc = bronze_rows(spread_over(H0, H0 + HOUR, 5), symbol="BTCUSDT")
    eth = bronze_rows(spread_over(H0, H0 + HOUR, 3), first_id=7, symbol="ETHUSDT")
    overwrite_window(catalog, BRONZE_AGG_TRADES, btc, H0, H0 + HOUR, symbol="BTCUSDT")
    overwrite_window(catalog, BRONZE_AGG_TRADES, eth, H0, H0 + HOUR, symbol="ETHUSDT")
    # A re-run of one symbol's window replaces that symbol's rows only.
    eth_again = bronze_rows([H0 + 9], first_id=10, symbol="ETHUSDT")
    overwrite_window(catalog, BRONZE_AGG_TRADES, eth_again, H0, H0 + HOUR, symbol="ETHUSDT")
    stored = scan_window(catalog, BRONZE_AGG_TRADES, H0, H0 + HOUR)
    by_symbol = {
        symbol: sorted(
            stored.filter(pc.equal(stored["symbol"], symbol))["agg_trade_id"].to_pylist()
        )
        for symbol in ("BTCUSDT", "ETHUSDT")
    }
    assert by_symbol == {"BTCUSDT": list(range(FIRST_ID, FIRST_ID + 5)), "ETHUSDT": [10]}
    only_eth = scan_window(catalog, BRONZE_AGG_TRADES, H0, H0 + HOUR, symbol="ETHUSDT")
    assert only_eth["agg_trade_id"].to_pylist() == [10]


@pytest.mark.parametrize(
    "symbols", [["ETHUSDT"], ["BTCUSDT", "ETHUSDT"]], ids=["another symbol", "mixed"]
)
def test_rows_of_another_symbol_are_refused_before_any_commit(catalog, symbols):
    overwrite_window(
        catalog, BRONZE_AGG_TRADES, bronze_rows([H0 + 1]), H0, H0 + HOUR, symbol=SYMBOL
    )
    before = current_snapshot_id(catalog, BRONZE_AGG_TRADES)
    rows = pa.concat_tables(
        bronze_rows([H0 + 2 + k], first_id=FIRST_ID + 1 + k, symbol=symbol)
        for k, symbol in enumerate(symbols)
    )
    with pytest.raises(ValueError, match="ETHUSDT"):
        overwrite_window(catalog, BRONZE_AGG_TRADES, rows, H0, H0 + HOUR, symbol=SYMBOL)
    assert current_snapshot_id(catalog, BRONZE_AGG_TRADES) == before
    assert ids_in(catalog, H0, H0 + HOUR) == [FIRST_ID]


def test_every_lake_table_names_the_symbol_of_each_row():
    from btc_platform.lakehouse.live_tables import LIVE_TABLES

    for spec in (*TABLES, *LIVE_TABLES):
        assert spec.schema.field("symbol").type == pa.string(), spec.qualified_name
    with pytest.raises(ValueError, match="no 'symbol' column"):
        tables.TableSpec("x", "y", pa.schema([("ts", pa.int64())]), "ts", None, "")


def test_a_window_inside_a_day_partition_keeps_the_rest_of_the_day(catalog):
    """silver.bars_1s is partitioned by day: a window of one hour rewrites part of a file."""
    day_rows = bars_rows(spread_over(H0, H0 + DAY, 24), n_trades=1)
    overwrite_window(catalog, SILVER_BARS_1S, day_rows, H0, H0 + DAY, symbol=SYMBOL)
    hour_rows = bars_rows([H0 + HOUR + 5_000_000], n_trades=7)
    overwrite_window(catalog, SILVER_BARS_1S, hour_rows, H0 + HOUR, H0 + 2 * HOUR, symbol=SYMBOL)
    stored = scan_window(catalog, SILVER_BARS_1S, H0, H0 + DAY).sort_by("ts")
    n_trades_by_time = dict(
        zip(
            pc.cast(stored["ts"], pa.int64()).to_pylist(),
            stored["n_trades"].to_pylist(),
            strict=True,
        )
    )
    other_hours = {H0 + k * HOUR: 1 for k in range(24) if k != 1}
    assert n_trades_by_time == {**other_hours, H0 + HOUR + 5_000_000: 7}
    assert set(stored["notional_e16"].to_pylist()) == {Decimal(10**30)}  # beyond int64, exact


def test_a_wrongly_typed_column_fails_before_any_commit(catalog):
    overwrite_window(
        catalog, BRONZE_AGG_TRADES, bronze_rows([H0 + 1]), H0, H0 + HOUR, symbol=SYMBOL
    )
    before = current_snapshot_id(catalog, BRONZE_AGG_TRADES)
    rows = bronze_rows([H0 + 2], first_id=FIRST_ID + 1)
    rows = rows.set_column(
        rows.schema.get_field_index("price_e8"), "price_e8", pa.array(["ninety-eight"])
    )
    with pytest.raises(pa.ArrowInvalid):
        overwrite_window(catalog, BRONZE_AGG_TRADES, rows, H0, H0 + HOUR, symbol=SYMBOL)
    assert current_snapshot_id(catalog, BRONZE_AGG_TRADES) == before
    assert ids_in(catalog, H0, H0 + HOUR) == [FIRST_ID]


def test_a_null_in_a_required_column_fails_before_any_commit(catalog):
    rows = bronze_rows([H0 + 1, H0 + 2])
    rows = rows.set_column(
        rows.schema.get_field_index("price_e8"), "price_e8", pa.array([1, None], pa.int64())
    )
    with pytest.raises(ValueError, match="price_e8"):
        overwrite_window(catalog, BRONZE_AGG_TRADES, rows, H0, H0 + HOUR, symbol=SYMBOL)
    assert current_snapshot_id(catalog, BRONZE_AGG_TRADES) is None


def test_a_missing_column_fails_before_any_commit(catalog):
    rows = bronze_rows([H0 + 2]).drop_columns(["source"])
    with pytest.raises(KeyError):
        overwrite_window(catalog, BRONZE_AGG_TRADES, rows, H0, H0 + HOUR, symbol=SYMBOL)
    assert current_snapshot_id(catalog, BRONZE_AGG_TRADES) is None


def test_columns_are_cast_to_the_table_schema_and_extra_ones_dropped(catalog):
    rows = bronze_rows([H0 + 2])
    rows = rows.set_column(
        rows.schema.get_field_index("version"), "version", pa.array([1], pa.int64())
    ).append_column("debug_note", pa.array(["not stored"]))
    overwrite_window(catalog, BRONZE_AGG_TRADES, rows, H0, H0 + HOUR, symbol=SYMBOL)
    stored = scan_window(catalog, BRONZE_AGG_TRADES, H0, H0 + HOUR)
    assert stored.schema == BRONZE_AGG_TRADES.schema
    assert stored["version"].to_pylist() == [1]


# -- scan_window ---------------------------------------------------------------------------------


def test_scanning_a_missing_table_returns_an_empty_table_with_the_schema(catalog):
    empty = scan_window(catalog, SILVER_BARS_1S, H0, H0 + DAY)
    assert empty.num_rows == 0
    assert empty.schema == SILVER_BARS_1S.schema
    assert not catalog.table_exists(SILVER_BARS_1S.identifier)


def test_scanning_a_missing_table_keeps_the_selected_columns(catalog):
    columns = ("agg_trade_id", "transact_time")
    empty = scan_window(catalog, BRONZE_AGG_TRADES, H0, H0 + HOUR, columns)
    assert empty.num_rows == 0
    assert empty.schema == pa.schema([BRONZE_AGG_TRADES.schema.field(c) for c in columns])


def test_a_scan_returns_the_window_half_open_with_the_selected_columns(catalog):
    times = [H0 - 1, H0, H0 + HOUR - 1, H0 + HOUR]
    for start in (H0 - HOUR, H0, H0 + HOUR):
        in_hour = [t for t in times if start <= t < start + HOUR]
        first_id = FIRST_ID + times.index(in_hour[0])
        rows = bronze_rows(in_hour, first_id=first_id)
        overwrite_window(catalog, BRONZE_AGG_TRADES, rows, start, start + HOUR, symbol=SYMBOL)
    columns = ("agg_trade_id", "transact_time")
    window = scan_window(catalog, BRONZE_AGG_TRADES, H0, H0 + HOUR, columns)
    assert window.column_names == list(columns)
    assert window.schema == pa.schema([BRONZE_AGG_TRADES.schema.field(c) for c in columns])
    assert sorted(pc.cast(window["transact_time"], pa.int64()).to_pylist()) == [H0, H0 + HOUR - 1]
