"""The model's jobs and schedules: a daily full retrain, an hourly incremental update, and
a rollback that is one action."""

import datetime as dt

import dagster as dg

from btc_platform.defs.constants import MODEL_CANDIDATE, PRODUCTION_MODEL
from btc_platform.defs.ml.promotion import production_key, reported
from btc_platform.defs.resources import LakehouseResource, ModelStoreResource, RedisResource
from btc_platform.ml.pointer import PromotionRefused
from btc_platform.ml.serving import RegistryBehind, roll_back

_CANDIDATE_OP = "__".join(MODEL_CANDIDATE.path)

train_and_promote = dg.define_asset_job(
    "train_and_promote",
    selection=dg.AssetSelection.assets(MODEL_CANDIDATE, PRODUCTION_MODEL),
    description="A new model on the newest week of gold, promoted if its gate passes.",
)
incremental_update = dg.define_asset_job(
    "incremental_update",
    selection=dg.AssetSelection.assets(MODEL_CANDIDATE, PRODUCTION_MODEL),
    config={"ops": {_CANDIDATE_OP: {"config": {"mode": "incremental", "hours": 6}}}},
    description="The production model's output layer refitted on the newest six hours, "
    "promoted if its gate passes.",
)


@dg.op(
    description="Put the previous production model back (pointer file, registry, then a "
    "best-effort copy in Redis). The version it replaces is promoted again only when forced."
)
def roll_back_production_model(
    context: dg.OpExecutionContext,
    lakehouse: LakehouseResource,
    model_store: ModelStoreResource,
    redis: RedisResource,
) -> None:
    symbol = lakehouse.settings().symbol
    with production_key(redis, lakehouse) as key:
        try:
            moved = roll_back(
                model_store.store(),
                lakehouse.catalog(),
                key,
                symbol,
                now=dt.datetime.now(dt.UTC),
            )
        except (PromotionRefused, RegistryBehind, KeyError) as error:
            raise dg.Failure(str(error)) from error
    reported(context, moved)
    context.log.info("%s production model is now %s", symbol, moved.pointer.production)


@dg.job(description="Roll the production model back to the version it replaced.")
def rollback_model() -> None:
    roll_back_production_model()


ML_SCHEDULES = [
    # After the daily lakehouse run has written yesterday's gold.
    dg.ScheduleDefinition(
        job=train_and_promote, cron_schedule="0 1 * * *", execution_timezone="UTC"
    ),
    dg.ScheduleDefinition(
        job=incremental_update, cron_schedule="30 * * * *", execution_timezone="UTC"
    ),
]
ML_JOBS = [train_and_promote, incremental_update, rollback_model]
