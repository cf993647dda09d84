"""The live tables on a real SQLite catalog: nested depth levels and idempotent hours."""

from __future__ import annotations

import pyarrow as pa
import pytest

pytest.importorskip("pyiceberg", reason="the batch extra is not installed")

from btc_platform.lakehouse.live_tables import BRONZE_LIVE_DEPTH, LIVE_TABLES
from btc_platform.lakehouse.tables import (
    ensure_table,
    name_mapping,
    overwrite_window,
    scan_window,
)
from btc_platform_tests.realtime.archive.events import DAY_START_US, SYMBOL, depth
from realtime.archive.rows import market_batch

HOUR_US = 3_600_000_000


def test_every_live_table_is_created_with_its_partitioning(iceberg_catalog):
    for spec in LIVE_TABLES:
        table = ensure_table(iceberg_catalog, spec)
        assert table.schema().as_arrow().names == spec.schema.names, spec.qualified_name
        (field,) = table.spec().fields
        assert field.transform == spec.partition
        assert table.schema().find_field(field.source_id).name == spec.time_column


def test_nested_ids_follow_the_top_level_positions():
    mapping = name_mapping(BRONZE_LIVE_DEPTH.schema)
    top = [field.field_id for field in mapping]
    assert top == list(range(1, len(BRONZE_LIVE_DEPTH.schema) + 1))
    bids = next(field for field in mapping if field.names == ["bids"])
    (element,) = bids.fields
    assert element.names == ["element"]
    assert [f.names for f in element.fields] == [["price_e8"], ["qty_e8"]]
    ids = [element.field_id, *(f.field_id for f in element.fields)]
    assert min(ids) > len(BRONZE_LIVE_DEPTH.schema)


def test_depth_levels_survive_a_window_overwrite_and_a_rerun_does_not_duplicate(iceberg_catalog):
    events = depth(1, 20, DAY_START_US)
    batch = market_batch("depth", events, source="sbe", ingest_ts_us=DAY_START_US)
    rows = pa.Table.from_batches([batch])
    ensure_table(iceberg_catalog, BRONZE_LIVE_DEPTH)
    for _ in range(2):
        overwrite_window(
            iceberg_catalog,
            BRONZE_LIVE_DEPTH,
            rows,
            DAY_START_US,
            DAY_START_US + HOUR_US,
            symbol=SYMBOL,
        )
    stored = scan_window(iceberg_catalog, BRONZE_LIVE_DEPTH, DAY_START_US, DAY_START_US + HOUR_US)
    assert stored.num_rows == len(events)
    assert stored.sort_by("event_time").to_pylist() == rows.to_pylist()
