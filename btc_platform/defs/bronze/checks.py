"""The completeness proof of bronze.agg_trades as a blocking asset check.

The asset evaluates it right after its write, in the same step, since that step knows the
run's hours however many a backfill batched into it. It reads back what the run wrote plus
the neighbouring hours' edge ids, so it proves the table, not the fetch. Its metadata names
the missing id ranges and the hourly partitions that may hold them, which is what the gap
sensor repairs.
"""

import datetime as dt

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog import Catalog

from btc_platform.defs.constants import AGG_TRADE_IDS_COMPLETE, BRONZE_AGG_TRADES
from btc_platform.defs.resources import LakehouseResource
from btc_platform.lakehouse import tables
from btc_platform.lakehouse.completeness import (
    US_PER_HOUR,
    hours_to_repair,
    prove_completeness,
)

PARTITIONS_TO_REPAIR = "partitions_to_repair"
"""Metadata key the gap sensor reads: hourly partition keys, as a JSON list."""


def hour_partition_key(hour_start_us: int) -> str:
    return dt.datetime.fromtimestamp(hour_start_us / 1e6, tz=dt.UTC).strftime("%Y-%m-%d-%H:%M")


COMPLETENESS_SPEC = dg.AssetCheckSpec(
    AGG_TRADE_IDS_COMPLETE,
    asset=BRONZE_AGG_TRADES,
    blocking=True,
    description=(
        "Aggregate trade ids are consecutive: no duplicate, max - min + 1 == count inside the "
        "run's hours, and no hole across their edges with the neighbouring hours."
    ),
)


def check_completeness(
    lakehouse: LakehouseResource, start_us: int, end_us: int
) -> dg.AssetCheckResult:
    """Prove ``[start_us, end_us)`` of bronze.agg_trades complete, or name what is missing."""
    catalog, symbol = lakehouse.catalog(), lakehouse.settings().symbol
    spec = tables.BRONZE_AGG_TRADES
    columns = ("agg_trade_id", "transact_time")
    window = tables.scan_window(catalog, spec, start_us, end_us, columns, symbol=symbol)
    ids = window["agg_trade_id"].to_numpy()
    times_us = pc.cast(window["transact_time"], pa.int64()).to_numpy()
    proof = prove_completeness(
        ids,
        _neighbour_id(catalog, symbol, start_us, -1),
        _neighbour_id(catalog, symbol, end_us, +1),
    )
    repair = [
        hour_partition_key(hour)
        for hour in hours_to_repair(proof, ids, times_us, (start_us, end_us))
    ]
    return dg.AssetCheckResult(
        check_name=AGG_TRADE_IDS_COMPLETE,
        passed=proof.passed,
        description=proof.describe(),
        metadata={
            "rows": proof.rows,
            "first_agg_trade_id": proof.first_id,
            "last_agg_trade_id": proof.last_id,
            "duplicates": proof.duplicates,
            "missing_ids": proof.missing_ids,
            "missing_ranges": dg.MetadataValue.json([str(r) for r in proof.missing]),
            "edge_before": proof.before.value,
            "edge_after": proof.after.value,
            PARTITIONS_TO_REPAIR: dg.MetadataValue.json(repair),
            "window_start_us": start_us,
            "window_end_us": end_us,
        },
    )


NEIGHBOUR_LOOKUP_HOURS = (1, 24)
"""How far a check looks for the neighbouring ids: the next hour, else the next day (an
hour without trades is rare, and its own check must not hide a hole behind it)."""


def _neighbour_id(catalog: Catalog, symbol: str, edge_us: int, direction: int) -> int | None:
    """The last id before ``edge_us`` (direction -1) or the first id from it (+1)."""
    for hours in NEIGHBOUR_LOOKUP_HOURS:
        span = hours * US_PER_HOUR
        low, high = (edge_us - span, edge_us) if direction < 0 else (edge_us, edge_us + span)
        rows = tables.scan_window(
            catalog, tables.BRONZE_AGG_TRADES, low, high, ("agg_trade_id",), symbol=symbol
        )
        if rows.num_rows:
            ids = rows["agg_trade_id"].to_numpy()
            return int(ids.max() if direction < 0 else ids.min())
    return None
