"""The lakehouse end to end: the local exchange serves six hours of market; a Dagster
backfill of those hours materialises bronze → silver → gold into a real SQLite Iceberg
catalog; every check passes; re-running a partition changes no row count; a withheld id
range is caught by the completeness proof and repaired by the gap sensor.

The six hours straddle a UTC midnight, so the first three come from the daily archive file
(their day has ended) and the last three from REST (theirs is still running).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow.compute as pc
import pytest

dg = pytest.importorskip("dagster", reason="the batch extra is not installed")

from dagster._core.storage.asset_check_execution_record import (  # noqa: E402
    COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES,
)
from dagster._core.storage.tags import BACKFILL_ID_TAG  # noqa: E402

from btc_platform.defs.constants import (  # noqa: E402
    AGG_TRADE_IDS_COMPLETE,
    BRONZE_AGG_TRADES,
    GOLD_TRAINING_1S,
    SILVER_BARS_1S,
    SILVER_FEATURES_1S,
    SILVER_TRADES,
)
from btc_platform.defs.recovery.sensors import SENSOR_NAME  # noqa: E402
from btc_platform.lakehouse import tables  # noqa: E402
from btc_platform.lakehouse.catalog import open_catalog  # noqa: E402
from btc_platform.lakehouse.gap_events import gaps_key  # noqa: E402
from btc_platform.settings import LakehouseSettings  # noqa: E402
from btc_platform_tests.support.dagster_backfill import (  # noqa: E402
    IN_PROCESS,
    code_location,
    launch_backfill,
    run_backfill,
)
from btc_platform_tests.support.exchange_thread import ServedExchange, serve_in_thread  # noqa: E402
from realtime.sim.exchange import ExchangeConfig  # noqa: E402
from realtime.sim.market_model import MarketModel, MarketParams  # noqa: E402

pytestmark = pytest.mark.slow

HOUR_US = 3_600_000_000
MARKET_START_US = 1_767_225_600_000_000 + 21 * HOUR_US  # 2026-01-01T21:00Z
HOURS = [
    "2026-01-01-21:00",
    "2026-01-01-22:00",
    "2026-01-01-23:00",
    "2026-01-02-00:00",
    "2026-01-02-01:00",
    "2026-01-02-02:00",
]
DAYS = ["2026-01-01", "2026-01-02"]
ALL_ASSETS = [
    BRONZE_AGG_TRADES,
    SILVER_TRADES,
    SILVER_BARS_1S,
    SILVER_FEATURES_1S,
    GOLD_TRAINING_1S,
]
TABLES = {
    BRONZE_AGG_TRADES: tables.BRONZE_AGG_TRADES,
    SILVER_TRADES: tables.SILVER_TRADES,
    SILVER_BARS_1S: tables.SILVER_BARS_1S,
    SILVER_FEATURES_1S: tables.SILVER_FEATURES_1S,
    GOLD_TRAINING_1S: tables.GOLD_TRAINING_1S,
}
ALL_TIME = (0, 2**62)


@dataclass
class Lake:
    exchange: ServedExchange
    instance: dg.DagsterInstance
    settings: LakehouseSettings
    backfill: object
    redis_url: str

    def row_counts(self) -> dict[dg.AssetKey, int]:
        catalog = open_catalog(self.settings)
        return {
            key: tables.scan_window(catalog, spec, *ALL_TIME, (spec.time_column,)).num_rows
            for key, spec in TABLES.items()
        }


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory, redis_server) -> Iterator[Lake]:
    """Six market hours served, and one backfill of them through every layer."""
    data_dir = tmp_path_factory.mktemp("lake")
    source = MarketModel(MarketParams(seed=11, start_time_us=MARKET_START_US))
    config = ExchangeConfig(speed=0, history_s=6 * 3600, weight_limit=None)
    with serve_in_thread(source, config) as exchange, pytest.MonkeyPatch.context() as env:
        # The code location reads these when its resources are built, as in production.
        env.setenv("BTC_DATA_DIR", str(data_dir))
        env.setenv("BTC_BINANCE_REST_URL", exchange.url)
        env.setenv("BTC_BINANCE_ARCHIVE_URL", exchange.url)
        env.setenv("BTC_REDIS_URL", redis_server.url)
        env.delenv("BTC_HISTORY_START", raising=False)
        with (
            dg.instance_for_test(
                synchronous_run_coordinator=True, synchronous_run_launcher=True
            ) as instance,
            code_location(instance) as workspace,
        ):
            backfill_id = launch_backfill(workspace, HOURS, ALL_ASSETS)
            backfill = run_backfill(workspace, backfill_id)
            yield Lake(exchange, instance, LakehouseSettings(), backfill, redis_server.url)


def test_backfill_materialises_every_layer_and_every_check_passes(lake: Lake):
    assert lake.backfill.status.value == "COMPLETED_SUCCESS"
    runs = lake.instance.get_runs(
        filters=dg.RunsFilter(tags={BACKFILL_ID_TAG: lake.backfill.backfill_id})
    )
    assert runs
    assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs)
    # BackfillPolicy: contiguous partitions load in one run (up to a day of hours, a week
    # of days), not one run per partition; the hours still split at midnight by source.
    bronze_runs = [r for r in runs if BRONZE_AGG_TRADES in (r.asset_selection or ())]
    assert len(bronze_runs) == 1
    assert len(runs) == 2

    assert lake.instance.get_materialized_partitions(BRONZE_AGG_TRADES) == set(HOURS)
    for key in ALL_ASSETS[1:]:
        assert lake.instance.get_materialized_partitions(key) == set(DAYS), key

    evaluations = _completed_evaluations(lake.instance)
    assert evaluations, "no check was evaluated"
    failed = [(key, e.description) for key, e in evaluations if not e.passed]
    assert failed == []
    checked = {key.asset_key for key, _ in evaluations}
    assert checked == set(ALL_ASSETS)

    counts = lake.row_counts()
    assert counts[SILVER_BARS_1S] == 2 * 86_400  # every second of both days
    assert counts[SILVER_FEATURES_1S] == 2 * 86_400
    assert counts[SILVER_TRADES] == counts[BRONZE_AGG_TRADES] > 100_000
    assert 0 < counts[GOLD_TRAINING_1S] < 6 * 3600

    # The day that has ended came from its archive file, the running day from REST.
    by_source = _bronze_metadata(lake.instance, "rows_by_source")
    catalog = open_catalog(lake.settings)
    midnight_us = MARKET_START_US + 3 * HOUR_US
    before = tables.scan_window(catalog, tables.BRONZE_AGG_TRADES, 0, midnight_us, ("source",))
    after = tables.scan_window(catalog, tables.BRONZE_AGG_TRADES, midnight_us, 2**62, ("source",))
    assert set(before["source"].to_pylist()) == {"archive"}
    assert set(after["source"].to_pylist()) == {"rest"}
    assert by_source[HOURS[0]] == {"archive": before.num_rows, "rest": after.num_rows}


def test_rerunning_a_partition_leaves_row_counts_unchanged(lake: Lake):
    before = lake.row_counts()
    job = _job(lake)
    snapshots = _snapshot_ids(lake)
    assert job.execute_in_process(
        instance=lake.instance,
        partition_key=HOURS[4],
        asset_selection=[BRONZE_AGG_TRADES],
        run_config=IN_PROCESS,
    ).success
    assert job.execute_in_process(
        instance=lake.instance,
        partition_key=DAYS[1],
        asset_selection=ALL_ASSETS[1:],
        run_config=IN_PROCESS,
    ).success

    assert lake.row_counts() == before
    changed = _snapshot_ids(lake)
    assert all(changed[key] != snapshots[key] for key in TABLES)  # rewritten, not skipped


def test_a_withheld_id_range_fails_the_proof_and_the_gap_sensor_repairs_it(lake: Lake):
    hour = HOURS[4]
    first_id, last_id = _ids_of_hour(lake, hour)
    sensor = _sensor(lake)
    baseline = _cursor_past_everything(lake, sensor)
    hole = (first_id + 5_000, first_id + 5_120)
    # A hole in the lake, as a load during a withhold leaves it; a reload keeps what the lake
    # has, so the hole stays while the exchange still withholds the ids.
    _remove_ids(lake, hour, *hole)
    lake.exchange.post_fault(
        {"fault": "withhold", "ids": "agg_trade", "first_id": hole[0], "last_id": hole[1]}
    )
    job = _job(lake)
    broken = job.execute_in_process(
        instance=lake.instance,
        partition_key=hour,
        asset_selection=[BRONZE_AGG_TRADES],
        run_config=IN_PROCESS,
        raise_on_error=False,
    )
    assert not broken.success  # the blocking check fails the step
    (evaluation,) = broken.get_asset_check_evaluations()
    assert not evaluation.passed
    assert evaluation.metadata["missing_ranges"].value == [f"{hole[0]}-{hole[1]}"]
    assert evaluation.metadata["partitions_to_repair"].value == [hour]
    assert f"{hole[1] - hole[0] + 1} ids missing: {hole[0]}-{hole[1]}" in evaluation.description

    lake.exchange.clear_faults()  # the exchange heals
    with _sensor_context(lake, baseline) as context:
        tick = sensor.evaluate_tick(context)
    (request,) = tick.run_requests
    assert request.partition_key == hour
    assert request.asset_selection == [BRONZE_AGG_TRADES]
    assert request.run_key.startswith(f"repair:{hour}:check-")

    repaired = job.execute_in_process(
        instance=lake.instance,
        partition_key=request.partition_key,
        asset_selection=request.asset_selection,
        tags=request.tags,
        run_config=IN_PROCESS,
    )
    assert repaired.success
    (evaluation,) = repaired.get_asset_check_evaluations()
    assert evaluation.passed
    assert _ids_of_hour(lake, hour) == (first_id, last_id)

    # The next tick starts after the evaluations it has seen: nothing left to repair.
    with _sensor_context(lake, tick.cursor) as context:
        assert sensor.evaluate_tick(context).run_requests == []


def test_a_reload_while_ids_are_withheld_keeps_every_row_the_lake_had(lake: Lake):
    hour = HOURS[5]
    first_id, last_id = _ids_of_hour(lake, hour)
    hole = (first_id + 100, first_id + 250)
    lake.exchange.post_fault(
        {"fault": "withhold", "ids": "agg_trade", "first_id": hole[0], "last_id": hole[1]}
    )
    try:
        reload = _job(lake).execute_in_process(
            instance=lake.instance,
            partition_key=hour,
            asset_selection=[BRONZE_AGG_TRADES],
            run_config=IN_PROCESS,
            raise_on_error=False,
        )
    finally:
        lake.exchange.clear_faults()
    (evaluation,) = reload.get_asset_check_evaluations()
    assert evaluation.passed, evaluation.description
    assert reload.success
    assert _ids_of_hour(lake, hour) == (first_id, last_id)
    (event,) = reload.get_asset_materialization_events()
    metadata = {k: v.value for k, v in event.materialization.metadata.items()}
    rows = last_id - first_id + 1
    assert metadata["holes_seen_by_rest"] == [f"{hole[0]}-{hole[1]}"]
    assert (metadata["rows_fetched"], metadata["rows_before"], metadata["rows"]) == (
        rows - (hole[1] - hole[0] + 1),
        rows,
        rows,
    )
    assert (metadata["rows_kept_from_lake"], metadata["rows_added"]) == (hole[1] - hole[0] + 1, 0)
    assert metadata["conflicting_ids"] == 0


def test_the_gap_sensor_repairs_hours_the_live_service_reported(lake: Lake):
    import redis

    sensor = _sensor(lake)
    baseline = _cursor_past_everything(lake, sensor)
    client = redis.Redis.from_url(lake.redis_url)
    start_us = MARKET_START_US + 4 * HOUR_US + 600_000_000  # 01:10 on the second day
    client.xadd(
        gaps_key("BTCUSDT"),
        {
            "kind": "trade_id_jump",
            "first_id": "123",
            "last_id": "130",
            "first_time_us": str(start_us),
            "last_time_us": str(start_us + HOUR_US),  # runs into the next hour
        },
    )
    client.xadd(gaps_key("BTCUSDT"), {"kind": "garbage"})  # logged and skipped, not fatal
    with _sensor_context(lake, baseline) as context:
        tick = sensor.evaluate_tick(context)
    requested = sorted(r.partition_key for r in tick.run_requests)
    assert requested == [HOURS[4], HOURS[5]]
    assert all(r.run_key.startswith(f"repair:{r.partition_key}:gap-") for r in tick.run_requests)
    with _sensor_context(lake, tick.cursor) as context:
        assert sensor.evaluate_tick(context).run_requests == []


# -- helpers ---------------------------------------------------------------------------------


def _defs() -> dg.Definitions:
    from btc_platform.definitions import defs

    return defs


def _sensor_context(lake: Lake, cursor: str | None = None) -> dg.SensorEvaluationContext:
    defs = _defs()
    return dg.build_sensor_context(
        instance=lake.instance, definitions=defs, resources=defs.resources, cursor=cursor
    )


def _cursor_past_everything(lake: Lake, sensor: dg.SensorDefinition) -> str | None:
    """The sensor's cursor once it has read what earlier tests left in the shared Redis and
    event log: a tick reads a bounded amount, so it takes as many ticks as that needs."""
    cursor = None
    for _ in range(100):
        with _sensor_context(lake, cursor) as context:
            tick = sensor.evaluate_tick(context)
        if tick.cursor == cursor and not tick.run_requests:
            return cursor
        cursor = tick.cursor
    raise AssertionError("the sensor did not reach the end of its inputs in 100 ticks")


def _job(lake: Lake) -> dg.JobDefinition:
    return _defs().resolve_implicit_global_asset_job_def()


def _sensor(lake: Lake) -> dg.SensorDefinition:
    return _defs().resolve_sensor_def(SENSOR_NAME)


def _completed_evaluations(instance: dg.DagsterInstance):
    from btc_platform.defs.constants import BARS_RECONCILE, EXPECTATIONS, TRAINING_LEAKAGE

    keys = [dg.AssetCheckKey(BRONZE_AGG_TRADES, AGG_TRADE_IDS_COMPLETE)]
    keys += [dg.AssetCheckKey(key, EXPECTATIONS) for key in ALL_ASSETS[1:]]
    keys += [
        dg.AssetCheckKey(SILVER_BARS_1S, BARS_RECONCILE),
        dg.AssetCheckKey(GOLD_TRAINING_1S, TRAINING_LEAKAGE),
    ]
    found = []
    for key in keys:
        records = instance.event_log_storage.get_asset_check_execution_history(
            key, limit=100, status=COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES
        )
        assert records, f"{key} never evaluated"
        found.extend((key, record.evaluation) for record in records)
    return found


def _bronze_metadata(instance: dg.DagsterInstance, name: str) -> dict[str, object]:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=BRONZE_AGG_TRADES), limit=100
    ).records
    values: dict[str, object] = {}
    for record in records:
        metadata = record.asset_materialization.metadata
        start = metadata["window_start_us"].value
        end = metadata["window_end_us"].value
        for hour_us in range(start, end, HOUR_US):
            key = dt.datetime.fromtimestamp(hour_us / 1e6, tz=dt.UTC).strftime("%Y-%m-%d-%H:%M")
            values.setdefault(key, metadata[name].value)  # newest first
    return values


def _snapshot_ids(lake: Lake) -> dict[dg.AssetKey, int | None]:
    catalog = open_catalog(lake.settings)
    return {key: tables.current_snapshot_id(catalog, spec) for key, spec in TABLES.items()}


def _remove_ids(lake: Lake, hour: str, first_id: int, last_id: int) -> None:
    start_us = _hour_start_us(hour)
    catalog = open_catalog(lake.settings)
    spec = tables.BRONZE_AGG_TRADES
    rows = tables.scan_window(catalog, spec, start_us, start_us + HOUR_US)
    ids = rows["agg_trade_id"]
    outside = pc.or_(pc.less(ids, first_id), pc.greater(ids, last_id))
    symbol = lake.settings.symbol
    tables.overwrite_window(
        catalog, spec, rows.filter(outside), start_us, start_us + HOUR_US, symbol=symbol
    )


def _hour_start_us(hour: str) -> int:
    start = dt.datetime.strptime(hour, "%Y-%m-%d-%H:%M").replace(tzinfo=dt.UTC)
    return int(start.timestamp()) * 1_000_000


def _ids_of_hour(lake: Lake, hour: str) -> tuple[int, int]:
    start_us = _hour_start_us(hour)
    rows = tables.scan_window(
        open_catalog(lake.settings),
        tables.BRONZE_AGG_TRADES,
        start_us,
        start_us + HOUR_US,
        ("agg_trade_id",),
    )
    ids = sorted(rows["agg_trade_id"].to_pylist())
    assert ids == list(range(ids[0], ids[-1] + 1)), "the hour is not contiguous"
    return ids[0], ids[-1]
