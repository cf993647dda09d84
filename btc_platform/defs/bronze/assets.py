"""bronze.agg_trades: one hour of aggregate trades per partition, written idempotently.

A run merges what it fetched with what the lake holds for its hours (``bronze_merge``), so a
repair while the exchange still withholds ids cannot make a complete hour less complete.
"""

import time
from collections.abc import Iterator

import dagster as dg
import pyarrow as pa

from btc_platform.defs.bronze.checks import COMPLETENESS_SPEC, check_completeness
from btc_platform.defs.constants import BRONZE_AGG_TRADES, OWNERS
from btc_platform.defs.layers import run_sync
from btc_platform.defs.partitions import window_us
from btc_platform.defs.resources import BinanceResource, LakehouseResource
from btc_platform.lakehouse import tables
from btc_platform.lakehouse.bronze_fetch import FetchReport
from btc_platform.lakehouse.bronze_merge import merge_reload
from btc_platform.lakehouse.tables import overwrite_window

BINANCE_POOL = "binance_rest"
MAX_HOURS_PER_RUN = 24
"""A backfill loads up to a day per run: one archive file read, one Iceberg commit."""


def build_agg_trades(partitions: dg.HourlyPartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        key=BRONZE_AGG_TRADES,
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=MAX_HOURS_PER_RUN),
        group_name="bronze",
        owners=OWNERS,
        kinds={"iceberg", "python"},
        description=(
            "Binance aggregate trades of one hour, as fetched: from the daily archive file for "
            "days that have ended, else from REST by fromId. A run replaces exactly its hours "
            "with what the lake held plus what it fetched: a reload never loses a row."
        ),
        metadata={"table": tables.BRONZE_AGG_TRADES.qualified_name},
        check_specs=[COMPLETENESS_SPEC],
        # Runs share one IP's request weight; the pool (limit it to 1 with
        # `dagster instance concurrency set binance_rest 1`) keeps parallel backfill batches
        # and the hourly schedule from spending it twice.
        pool=BINANCE_POOL,
    )
    def agg_trades(
        context: dg.AssetExecutionContext, lakehouse: LakehouseResource, binance: BinanceResource
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        start_us, end_us = window_us(context.partition_time_window)
        settings = lakehouse.settings()
        catalog, spec = lakehouse.catalog(), tables.BRONZE_AGG_TRADES
        started = time.monotonic()
        fetched_rows, report = run_sync(_fetch(binance, settings.symbol, start_us, end_us))
        fetched = time.monotonic()
        stored = tables.scan_window(catalog, spec, start_us, end_us, symbol=settings.symbol)
        merge = merge_reload(stored, fetched_rows)
        if merge.conflicts:
            context.log.warning(
                "%d aggregate trade ids stored with other trade fields than fetched now; the "
                "fetched rows were written (first ids: %s)",
                merge.conflicts,
                list(merge.conflict_sample),
            )
        write = overwrite_window(
            catalog, spec, merge.rows, start_us, end_us, symbol=settings.symbol
        )
        ids = merge.rows["agg_trade_id"]
        context.log.info(
            "%d aggregate trades (%d fetched from %s, %d kept from the lake) in %.1f s, "
            "%d REST requests, holes seen: %s",
            write.rows,
            merge.rows_fetched,
            report.sources,
            merge.kept_from_lake,
            report.seconds,
            report.rest_requests,
            [str(gap) for gap in report.gaps] or "none",
        )
        yield dg.MaterializeResult(
            metadata={
                "rows": write.rows,
                "rows_before": merge.rows_before,
                "rows_fetched": merge.rows_fetched,
                "rows_kept_from_lake": merge.kept_from_lake,
                "rows_added": merge.rows_added,
                "conflicting_ids": merge.conflicts,
                "conflicting_id_sample": dg.MetadataValue.json(list(merge.conflict_sample)),
                "first_agg_trade_id": ids[0].as_py() if write.rows else None,
                "last_agg_trade_id": ids[-1].as_py() if write.rows else None,
                "source": report.sources,
                "rows_by_source": dg.MetadataValue.json(report.rows_by_source),
                "archive_files": dg.MetadataValue.json(report.archive_files),
                "archive_fallbacks": dg.MetadataValue.json(report.archive_fallbacks),
                "rest_requests": report.rest_requests,
                "rest_weight": report.rest_weight,
                "holes_seen_by_rest": dg.MetadataValue.json([str(g) for g in report.gaps]),
                "fetch_seconds": round(fetched - started, 3),
                "write_seconds": round(time.monotonic() - fetched, 3),
                "window_start_us": start_us,
                "window_end_us": end_us,
                "iceberg_snapshot_id": str(write.snapshot_id),
            }
        )
        yield check_completeness(lakehouse, start_us, end_us)

    return agg_trades


async def _fetch(
    binance: BinanceResource, symbol: str, start_us: int, end_us: int
) -> tuple[pa.Table, FetchReport]:
    async with binance.fetcher(symbol) as fetcher:
        now_us = await fetcher.rest.server_time_us()
        rows, report = await fetcher.fetch(start_us, end_us, now_us=now_us, ingest_ts_us=_now_us())
        return rows, report


def _now_us() -> int:
    return time.time_ns() // 1000
