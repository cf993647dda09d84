"""Schedules of the live capture: each hour into bronze once its segments have closed, and
each day's predictions and their quality after the day's gold.training_1s."""

import dagster as dg

from btc_platform.defs.constants import (
    BRONZE_LIVE_BEST_BID_ASK,
    BRONZE_LIVE_DEPTH,
    BRONZE_LIVE_TRADES,
    GOLD_PREDICTION_QUALITY,
    GOLD_PREDICTIONS,
)

LIVE_BRONZE_ASSETS = [BRONZE_LIVE_TRADES, BRONZE_LIVE_BEST_BID_ASK, BRONZE_LIVE_DEPTH]


def build_live_jobs_and_schedules() -> tuple[list, list[dg.ScheduleDefinition]]:
    live_hourly = dg.define_asset_job(
        "live_hourly",
        selection=dg.AssetSelection.assets(*LIVE_BRONZE_ASSETS),
        description="One hour of the live capture into bronze, with the trade-id proof.",
    )
    live_daily = dg.define_asset_job(
        "live_daily",
        selection=dg.AssetSelection.assets(GOLD_PREDICTIONS, GOLD_PREDICTION_QUALITY),
        description="One day of live predictions into gold, scored against realised labels.",
    )
    schedules = [
        # Segments rotate every segment_max_s (5 min by default): a quarter past the hour,
        # the hour's last segment has closed.
        dg.build_schedule_from_partitioned_job(live_hourly, minute_of_hour=15),
        # After lakehouse_daily (00:20) has written the day's labels.
        dg.build_schedule_from_partitioned_job(live_daily, hour_of_day=0, minute_of_hour=40),
    ]
    return [live_hourly, live_daily], schedules
