"""gold.training_1s: features at t with the 10-second-ahead label, one UTC day per partition.

The label is the SQL model's: ``log_price(t + 10) - log_price(t)`` where both seconds are in
the same day's features. A day's last ten seconds therefore have no training row, which
keeps each partition independent of the next day's arrival (the leakage guard: no label
reads past the last complete second of its own partition).
"""

import time
from collections.abc import Iterator

import dagster as dg
import pyarrow as pa
from dagster_duckdb import DuckDBResource

from btc_platform.defs.constants import GOLD_TRAINING_1S, OWNERS, SILVER_FEATURES_1S
from btc_platform.defs.gold.checks import LABELS_SPEC, check_labels
from btc_platform.defs.layers import DAYS_PER_RUN, days_of, now_us, rebuild_day, run_model
from btc_platform.defs.quality_checks import expectations_result, expectations_spec
from btc_platform.defs.resources import LakehouseResource
from btc_platform.lakehouse import tables


def build_gold(daily: dg.DailyPartitionsDefinition) -> list[dg.AssetsDefinition]:
    @dg.asset(
        key=GOLD_TRAINING_1S,
        deps=[SILVER_FEATURES_1S],
        partitions_def=daily,
        backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=DAYS_PER_RUN),
        group_name="gold",
        owners=OWNERS,
        kinds={"duckdb", "sql", "iceberg"},
        description=(
            "Training rows: the contract's features at t and y = log P(t+10) - log P(t), "
            "only where the label and every model input are defined (SQL model "
            "gold.training_1s)."
        ),
        metadata={"table": tables.GOLD_TRAINING_1S.qualified_name},
        check_specs=[expectations_spec(GOLD_TRAINING_1S), LABELS_SPEC],
    )
    def training_1s(
        context: dg.AssetExecutionContext, lakehouse: LakehouseResource, duckdb: DuckDBResource
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        catalog, symbol = lakehouse.catalog(), lakehouse.settings().symbol
        written, features_read = [], []
        started = time.monotonic()
        for day in days_of(context):
            features, rows = rebuild_day(
                catalog,
                day,
                tables.SILVER_FEATURES_1S,
                tables.GOLD_TRAINING_1S,
                lambda features, day=day: run_model(
                    duckdb,
                    "gold.training_1s",
                    {"silver.features_1s": features},
                    {
                        "window_start_sec": day.start_sec,
                        "window_end_sec": day.end_sec,
                        "last_complete_sec": day.end_sec - 1,
                        "ingest_ts_us": now_us(),
                    },
                ),
                symbol=symbol,
            )
            written.append(rows)
            features_read.append(features)
        data = pa.concat_tables(written).cast(tables.GOLD_TRAINING_1S.schema)
        features = pa.concat_tables(features_read)
        yield dg.MaterializeResult(
            metadata={
                "rows": data.num_rows,
                "feature_rows": features.num_rows,
                "seconds": round(time.monotonic() - started, 3),
                "features_snapshot_id": str(
                    tables.current_snapshot_id(catalog, tables.SILVER_FEATURES_1S)
                ),
                "iceberg_snapshot_id": str(
                    tables.current_snapshot_id(catalog, tables.GOLD_TRAINING_1S)
                ),
            }
        )
        yield expectations_result(GOLD_TRAINING_1S, data)
        yield check_labels(data, features)

    return [training_1s]
