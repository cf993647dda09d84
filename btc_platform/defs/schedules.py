"""Schedules: the last hour into bronze every hour; yesterday through silver and gold daily.

History is loaded with backfills over partition ranges instead (BackfillPolicy batches them).
"""

import dagster as dg

from btc_platform.defs.constants import (
    BRONZE_AGG_TRADES,
    GOLD_TRAINING_1S,
    SILVER_BARS_1S,
    SILVER_FEATURES_1S,
    SILVER_TRADES,
)

DAILY_ASSETS = [SILVER_TRADES, SILVER_BARS_1S, SILVER_FEATURES_1S, GOLD_TRAINING_1S]


def build_jobs_and_schedules() -> tuple[list, list[dg.ScheduleDefinition]]:
    """The jobs take their partitions from their assets."""
    bronze_hourly = dg.define_asset_job(
        "bronze_hourly",
        selection=dg.AssetSelection.assets(BRONZE_AGG_TRADES),
        description="One hour of aggregate trades into bronze, with its completeness proof.",
    )
    lakehouse_daily = dg.define_asset_job(
        "lakehouse_daily",
        selection=dg.AssetSelection.assets(*DAILY_ASSETS),
        description="One day through silver (trades, bars, features) and gold (training rows).",
    )
    schedules = [
        # A few minutes past the hour, so the hour's last trades have settled on REST.
        dg.build_schedule_from_partitioned_job(bronze_hourly, minute_of_hour=5),
        # After the last hourly bronze run of the day.
        dg.build_schedule_from_partitioned_job(lakehouse_daily, hour_of_day=0, minute_of_hour=20),
    ]
    return [bronze_hourly, lakehouse_daily], schedules
