"""silver.trades, silver.bars_1s and silver.features_1s: one UTC day per partition.

The set-based steps are SQL models (``dbt_like_sql``) run by DuckDB over Arrow scans of
Iceberg; the features are the feature contract's engine. Each asset reads its upstream
from Iceberg, writes its day with one window overwrite, and proves the result with its
checks (blocking: a failed check stops the layers above in the same run).
"""

import time
from collections.abc import Iterator

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
from dagster_duckdb import DuckDBResource
from pyiceberg.catalog import Catalog

from btc_platform.defs.constants import (
    BRONZE_AGG_TRADES,
    OWNERS,
    SILVER_BARS_1S,
    SILVER_FEATURES_1S,
    SILVER_TRADES,
)
from btc_platform.defs.layers import DAYS_PER_RUN, days_of, now_us, rebuild_day, run_model
from btc_platform.defs.quality_checks import expectations_result, expectations_spec
from btc_platform.defs.resources import LakehouseResource
from btc_platform.defs.silver.checks import BARS_RECONCILE_SPEC, reconcile_bars
from btc_platform.lakehouse import tables
from btc_platform.lakehouse.features import features_table

Results = Iterator[dg.MaterializeResult | dg.AssetCheckResult]


def build_silver(daily: dg.DailyPartitionsDefinition) -> list[dg.AssetsDefinition]:
    layer = {
        "partitions_def": daily,
        "backfill_policy": dg.BackfillPolicy.multi_run(max_partitions_per_run=DAYS_PER_RUN),
        "group_name": "silver",
        "owners": OWNERS,
    }

    @dg.asset(
        key=SILVER_TRADES,
        deps=[BRONZE_AGG_TRADES],
        **layer,
        kinds={"duckdb", "sql", "iceberg"},
        description=(
            "Aggregate trades deduplicated across sources and re-fetches: one row per "
            "agg_trade_id, archive preferred over REST over live (SQL model silver.trades)."
        ),
        metadata={"table": tables.SILVER_TRADES.qualified_name},
        check_specs=[expectations_spec(SILVER_TRADES)],
    )
    def trades(
        context: dg.AssetExecutionContext, lakehouse: LakehouseResource, duckdb: DuckDBResource
    ) -> Results:
        catalog, symbol = lakehouse.catalog(), lakehouse.settings().symbol
        written, per_day = [], {}
        for day in days_of(context):
            bronze, rows = rebuild_day(
                catalog,
                day,
                tables.BRONZE_AGG_TRADES,
                tables.SILVER_TRADES,
                lambda bronze, day=day: run_model(
                    duckdb,
                    "silver.trades",
                    {"bronze.agg_trades": bronze},
                    {"window_start_us": day.start_us, "window_end_us": day.end_us},
                ),
                symbol=symbol,
            )
            per_day[day.key] = {"bronze_rows": bronze.num_rows, "rows": rows.num_rows}
            written.append(rows)
        data = pa.concat_tables(written).cast(tables.SILVER_TRADES.schema)
        yield dg.MaterializeResult(
            metadata={
                "rows": data.num_rows,
                "duplicates_removed": sum(d["bronze_rows"] - d["rows"] for d in per_day.values()),
                "rows_by_source": dg.MetadataValue.json(_counts(data["source"])),
                "per_day": dg.MetadataValue.json(per_day),
                "bronze_snapshot_id": _snapshot(catalog, tables.BRONZE_AGG_TRADES),
                "iceberg_snapshot_id": _snapshot(catalog, tables.SILVER_TRADES),
            }
        )
        yield expectations_result(SILVER_TRADES, data)

    @dg.asset(
        key=SILVER_BARS_1S,
        deps=[SILVER_TRADES],
        **layer,
        kinds={"duckdb", "sql", "iceberg"},
        description=(
            "One bar per second, seconds without trades included: the exact integer "
            "aggregates the feature contract reads (SQL model silver.bars_1s)."
        ),
        metadata={"table": tables.SILVER_BARS_1S.qualified_name},
        check_specs=[expectations_spec(SILVER_BARS_1S), BARS_RECONCILE_SPEC],
    )
    def bars_1s(
        context: dg.AssetExecutionContext, lakehouse: LakehouseResource, duckdb: DuckDBResource
    ) -> Results:
        catalog = lakehouse.catalog()
        symbol = lakehouse.settings().symbol
        written, trades_read = [], []
        started = time.monotonic()
        for day in days_of(context):
            silver_trades, rows = rebuild_day(
                catalog,
                day,
                tables.SILVER_TRADES,
                tables.SILVER_BARS_1S,
                lambda trades, day=day: run_model(
                    duckdb,
                    "silver.bars_1s",
                    {"silver.trades": trades},
                    {
                        "window_start_sec": day.start_sec,
                        "window_end_sec": day.end_sec,
                        "symbol": symbol,
                        "ingest_ts_us": now_us(),
                    },
                ),
                symbol=symbol,
            )
            written.append(rows)
            trades_read.append(silver_trades)
        data = pa.concat_tables(written).cast(tables.SILVER_BARS_1S.schema)
        traded = pc.sum(pc.greater(data["n_trades"], 0)).as_py() or 0
        yield dg.MaterializeResult(
            metadata={
                "rows": data.num_rows,
                "seconds_with_trades": traded,
                "trades": pc.sum(data["n_trades"]).as_py() or 0,
                "seconds": round(time.monotonic() - started, 3),
                "iceberg_snapshot_id": _snapshot(catalog, tables.SILVER_BARS_1S),
            }
        )
        yield expectations_result(SILVER_BARS_1S, data)
        yield reconcile_bars(data, pa.concat_tables(trades_read), list(days_of(context)))

    @dg.asset(
        key=SILVER_FEATURES_1S,
        deps=[SILVER_BARS_1S],
        **layer,
        kinds={"python", "iceberg"},
        description=(
            "One feature vector per second by the feature contract's engine, the same code "
            "the live service runs (contract v1 from aggregate-trade history); the stream "
            "restarts at each UTC midnight, so a day computes alone."
        ),
        metadata={"table": tables.SILVER_FEATURES_1S.qualified_name},
        check_specs=[expectations_spec(SILVER_FEATURES_1S)],
    )
    def features_1s(context: dg.AssetExecutionContext, lakehouse: LakehouseResource) -> Results:
        catalog = lakehouse.catalog()
        symbol = lakehouse.settings().symbol
        written = []
        started = time.monotonic()
        for day in days_of(context):
            # The day's bars alone: the stream restarts at midnight (see lakehouse.features).
            _, rows = rebuild_day(
                catalog,
                day,
                tables.SILVER_BARS_1S,
                tables.SILVER_FEATURES_1S,
                lambda bars, day=day: features_table(
                    bars,
                    symbol=symbol,
                    start_sec=day.start_sec,
                    end_sec=day.end_sec,
                    ingest_ts_us=now_us(),
                ),
                symbol=symbol,
            )
            written.append(rows)
        data = pa.concat_tables(written)
        yield dg.MaterializeResult(
            metadata={
                "rows": data.num_rows,
                "contract_version": 1,
                "seconds": round(time.monotonic() - started, 3),
                "iceberg_snapshot_id": _snapshot(catalog, tables.SILVER_FEATURES_1S),
            }
        )
        yield expectations_result(SILVER_FEATURES_1S, data)

    return [trades, bars_1s, features_1s]


def _snapshot(catalog: Catalog, spec: tables.TableSpec) -> str:
    return str(tables.current_snapshot_id(catalog, spec))


def _counts(column: pa.ChunkedArray) -> dict[str, int]:
    counts = pc.value_counts(column)
    return {str(item["values"]): int(item["counts"]) for item in counts.to_pylist()}
