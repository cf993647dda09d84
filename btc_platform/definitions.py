"""The one ``Definitions`` object of the ``btc_platform`` code location (see workspace.yaml).

Nothing at import time reads the environment except the history's first day
(``BTC_HISTORY_START``), which the partitions need; resources read ``BTC_*`` settings when
they are built for a run.
"""

from __future__ import annotations

import datetime as dt
import warnings

import dagster as dg
from dagster_duckdb import DuckDBResource

from btc_platform.defs import partitions
from btc_platform.defs.bronze.assets import build_agg_trades
from btc_platform.defs.gold.assets import build_gold
from btc_platform.defs.live.assets import build_live_assets
from btc_platform.defs.live.resources import CaptureResource
from btc_platform.defs.live.schedules import build_live_jobs_and_schedules
from btc_platform.defs.ml.assets import model_candidate, production_model
from btc_platform.defs.ml.jobs import ML_JOBS, ML_SCHEDULES
from btc_platform.defs.recovery.sensors import build_gap_repair_sensor
from btc_platform.defs.resources import (
    BinanceResource,
    LakehouseResource,
    ModelStoreResource,
    RedisResource,
)
from btc_platform.defs.schedules import build_jobs_and_schedules
from btc_platform.defs.silver.assets import build_silver


def build_definitions(
    history_start: dt.date | None = None, resources: dict[str, object] | None = None
) -> dg.Definitions:
    """Assemble the code location; ``resources`` replace the defaults (tests)."""
    start = history_start or partitions.history_start()
    hourly, daily = partitions.hourly(start), partitions.daily(start)
    jobs, schedules = build_jobs_and_schedules()
    live_jobs, live_schedules = build_live_jobs_and_schedules()
    with warnings.catch_warnings():
        # BackfillPolicy is marked beta in this Dagster release; batching a backfill's
        # partitions into runs is why it is used, so the notice is acknowledged here.
        warnings.simplefilter("ignore", dg.BetaWarning)
        assets = [build_agg_trades(hourly), *build_silver(daily), *build_gold(daily)]
        assets += build_live_assets(hourly, daily)
    assets += [model_candidate, production_model]
    return dg.Definitions(
        assets=assets,
        jobs=[*jobs, *ML_JOBS, *live_jobs],
        schedules=[*schedules, *ML_SCHEDULES, *live_schedules],
        sensors=[build_gap_repair_sensor(hourly)],
        resources={
            "lakehouse": LakehouseResource(),
            "binance": BinanceResource(),
            "redis": RedisResource(),
            "model_store": ModelStoreResource(),
            "duckdb": DuckDBResource(database=":memory:"),
            "capture": CaptureResource(),
            **(resources or {}),
        },
    )


defs = build_definitions()
