"""A reload merged with the lake's rows: nothing the lake had is lost, a shared id is the
fetched row, and a disagreeing shared id is a counted conflict."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from btc_platform.lakehouse.bronze_merge import merge_reload
from btc_platform.lakehouse.tables import BRONZE_AGG_TRADES
from btc_platform_tests.btc_platform.lakehouse.test_tables import FIRST_ID, H0, bronze_rows


def rows(ids: list[int], *, source: str = "rest", price_shift: int = 0) -> pa.Table:
    """bronze rows with these ids (times follow the ids, so a row is the same trade by id)."""
    table = pa.concat_tables(
        [bronze_rows([H0 + i - FIRST_ID], first_id=i) for i in ids] or [bronze_rows([])]
    )
    table = table.set_column(
        table.schema.get_field_index("price_e8"),
        "price_e8",
        pc.add(pc.subtract(table["agg_trade_id"], FIRST_ID), 98_000 * 10**8 + price_shift),
    )
    table = table.set_column(
        table.schema.get_field_index("source"), "source", pa.array([source] * len(ids), pa.string())
    )
    return table.cast(BRONZE_AGG_TRADES.schema)


def ids_of(table: pa.Table) -> list[int]:
    return table["agg_trade_id"].to_pylist()


def test_ids_the_fetch_lacks_are_kept_from_the_lake():
    stored = rows(list(range(FIRST_ID, FIRST_ID + 10)), source="archive")
    fetched = rows([FIRST_ID, FIRST_ID + 1, FIRST_ID + 8, FIRST_ID + 9])
    merge = merge_reload(stored, fetched)
    assert ids_of(merge.rows) == list(range(FIRST_ID, FIRST_ID + 10))
    assert (merge.rows_before, merge.rows_fetched, merge.kept_from_lake) == (10, 4, 6)
    assert (merge.rows_added, merge.conflicts) == (0, 0)
    # A shared id is written as fetched (this run's envelope), the rest as the lake had it.
    sources = dict(zip(ids_of(merge.rows), merge.rows["source"].to_pylist(), strict=True))
    assert [sources[FIRST_ID + k] for k in (0, 1, 2, 7, 8, 9)] == ["rest"] * 2 + ["archive"] * 2 + [
        "rest"
    ] * 2


def test_ids_the_lake_lacked_are_added():
    merge = merge_reload(rows([FIRST_ID, FIRST_ID + 3]), rows(list(range(FIRST_ID, FIRST_ID + 5))))
    assert ids_of(merge.rows) == list(range(FIRST_ID, FIRST_ID + 5))
    assert (merge.rows_added, merge.kept_from_lake, merge.conflicts) == (3, 0, 0)


def test_a_first_load_is_the_fetch_and_an_empty_reload_keeps_the_lake():
    fetched = rows([FIRST_ID + 2, FIRST_ID])
    first = merge_reload(rows([]), fetched)
    assert ids_of(first.rows) == [FIRST_ID, FIRST_ID + 2]
    assert (first.rows_before, first.rows_added) == (0, 2)
    empty = merge_reload(first.rows, rows([]))
    assert ids_of(empty.rows) == [FIRST_ID, FIRST_ID + 2]
    assert (empty.kept_from_lake, empty.rows_added) == (2, 0)
    assert merge_reload(rows([]), rows([])).rows.num_rows == 0


def test_a_shared_id_with_another_trade_is_a_conflict_and_the_fetched_row_is_written():
    stored = rows(list(range(FIRST_ID, FIRST_ID + 3)), price_shift=0)
    fetched = rows([FIRST_ID + 1], price_shift=5)
    merge = merge_reload(stored, fetched)
    assert (merge.conflicts, merge.conflict_sample) == (1, (FIRST_ID + 1,))
    prices = dict(zip(ids_of(merge.rows), merge.rows["price_e8"].to_pylist(), strict=True))
    assert prices[FIRST_ID + 1] == fetched["price_e8"][0].as_py()
    assert prices[FIRST_ID] == stored["price_e8"][0].as_py()


def test_a_repeated_id_is_written_once():
    stored = rows([FIRST_ID, FIRST_ID, FIRST_ID + 1])
    merge = merge_reload(stored, rows([FIRST_ID + 1, FIRST_ID + 1]))
    assert ids_of(merge.rows) == [FIRST_ID, FIRST_ID + 1]
    assert (merge.rows_before, merge.rows_fetched, merge.conflicts) == (2, 1, 0)


def test_the_merge_keeps_the_table_schema():
    merge = merge_reload(rows([FIRST_ID]), rows([FIRST_ID + 1]))
    assert merge.rows.schema == BRONZE_AGG_TRADES.schema
