"""The id-contiguity proof of bronze.live_trades as a blocking asset check.

Binance numbers a symbol's raw trades consecutively, so the proof of bronze.agg_trades
(``btc_platform.lakehouse.completeness``) applies unchanged: no duplicate, ``max - min + 1
== count``, and no hole across the edges with the neighbouring hours already loaded. A
hole here means the capture missed trades (service down, a segment lost to a crash);
re-running the hour cannot fill it, so the check names the ranges and the hours that hold
them for a repair from REST or the archive, and does not feed the gap sensor.
"""

from __future__ import annotations

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog import Catalog

from btc_platform.defs.bronze.checks import NEIGHBOUR_LOOKUP_HOURS, hour_partition_key
from btc_platform.defs.constants import BRONZE_LIVE_TRADES, LIVE_TRADE_IDS_CONTIGUOUS
from btc_platform.lakehouse.completeness import US_PER_HOUR, hours_to_repair, prove_completeness
from btc_platform.lakehouse.live_tables import BRONZE_LIVE_TRADES as TRADES_TABLE
from btc_platform.lakehouse.tables import scan_window

CONTIGUITY_SPEC = dg.AssetCheckSpec(
    LIVE_TRADE_IDS_CONTIGUOUS,
    asset=BRONZE_LIVE_TRADES,
    blocking=True,
    description=(
        "Captured trade ids are consecutive: no duplicate, max - min + 1 == count inside the "
        "run's hours, and no hole across their edges with the neighbouring hours."
    ),
)


def check_contiguity(
    catalog: Catalog, symbol: str, start_us: int, end_us: int
) -> dg.AssetCheckResult:
    """Prove the trade ids of ``[start_us, end_us)`` contiguous, or name the holes."""
    window = _trades(catalog, symbol, start_us, end_us)
    ids = window["trade_id"].to_numpy()
    times_us = pc.cast(window["event_time"], pa.int64()).to_numpy()
    proof = prove_completeness(
        ids,
        _neighbour_id(catalog, symbol, start_us, -1),
        _neighbour_id(catalog, symbol, end_us, +1),
    )
    hours = [
        hour_partition_key(hour)
        for hour in hours_to_repair(proof, ids, times_us, (start_us, end_us))
    ]
    if proof.passed:
        description = (
            f"{proof.rows} trades, ids {proof.first_id}-{proof.last_id}, contiguous"
            if proof.rows
            else f"no trade; edges {proof.before.value}, {proof.after.value}"
        )
    else:
        description = proof.describe()
    return dg.AssetCheckResult(
        check_name=LIVE_TRADE_IDS_CONTIGUOUS,
        passed=proof.passed,
        description=description,
        metadata={
            "rows": proof.rows,
            "first_trade_id": proof.first_id,
            "last_trade_id": proof.last_id,
            "duplicates": proof.duplicates,
            "missing_ids": proof.missing_ids,
            "missing_ranges": dg.MetadataValue.json([str(r) for r in proof.missing]),
            "edge_before": proof.before.value,
            "edge_after": proof.after.value,
            "hours_with_holes": dg.MetadataValue.json(hours),
            "window_start_us": start_us,
            "window_end_us": end_us,
        },
    )


def _trades(catalog: Catalog, symbol: str, start_us: int, end_us: int) -> pa.Table:
    return scan_window(
        catalog, TRADES_TABLE, start_us, end_us, ("symbol", "trade_id", "event_time"), symbol=symbol
    )


def _neighbour_id(catalog: Catalog, symbol: str, edge_us: int, direction: int) -> int | None:
    """The last id before ``edge_us`` (direction -1) or the first id from it (+1)."""
    for hours in NEIGHBOUR_LOOKUP_HOURS:
        span = hours * US_PER_HOUR
        low, high = (edge_us - span, edge_us) if direction < 0 else (edge_us, edge_us + span)
        ids = _trades(catalog, symbol, low, high)["trade_id"]
        if len(ids):
            return int(pc.max(ids).as_py() if direction < 0 else pc.min(ids).as_py())
    return None
