"""The gap-recovery sensor: reload the bronze hours that the live service or the completeness
proof found holes in.

Two inputs, each read from where the last evaluation stopped (the cursor):

* ``gaps:{SYM}`` in Redis, from the last stream id seen;
* failed ``agg_trade_ids_complete`` evaluations, from the last event storage id seen; their
  metadata names the hourly partitions that may hold the missing ids.

Each repair is a run of bronze.agg_trades for one hour, with a run key unique per attempt
(the triggering event's id), so a hole found again is repaired again, and at most
``MAX_ATTEMPTS`` times in ``ATTEMPT_WINDOW``, so a hole Binance itself has does not loop.

No entry can stop the sensor: a malformed gap event (not UTF-8, implausible times, a range
longer than ``MAX_HOURS_PER_EVENT``) is refused, logged and counted in the cursor, and the
cursor moves past it; gaps that lost no aggregate trade (``silence``, ``depth``) reload
nothing. A tick reads at most ``EVENTS_PER_TICK`` entries and asks for at most
``MAX_RUN_REQUESTS_PER_TICK`` runs; it stops reading before an entry could pass that bound,
and the next tick goes on from there.
"""

import datetime as dt
import json
import time
from dataclasses import dataclass, field

import dagster as dg
from redis import Redis, RedisError

from btc_platform.defs.bronze.checks import PARTITIONS_TO_REPAIR, hour_partition_key
from btc_platform.defs.constants import AGG_TRADE_IDS_COMPLETE, BRONZE_AGG_TRADES
from btc_platform.defs.resources import LakehouseResource, RedisResource
from btc_platform.lakehouse.gap_events import (
    MAX_HOURS_PER_EVENT,
    GapEvent,
    MalformedGapEvent,
    decode_fields,
    entry_id,
    gaps_key,
)

SENSOR_NAME = "bronze_gap_repair"
MAX_ATTEMPTS = 3
ATTEMPT_WINDOW = dt.timedelta(hours=6)
EVENTS_PER_TICK = 500
MAX_RUN_REQUESTS_PER_TICK = 96
"""Runs one tick may ask for; an event adds at most ``MAX_HOURS_PER_EVENT`` of them."""
REPAIR_TAG = "btc/repair_partition"
COMPLETENESS_KEY = dg.AssetCheckKey(BRONZE_AGG_TRADES, AGG_TRADE_IDS_COMPLETE)


@dataclass
class RepairCursor:
    """Where the last evaluation stopped in each input."""

    gaps_stream_id: str = "0-0"
    check_storage_id: int = 0
    refused_gap_events: int = 0
    """Malformed gap events read past so far (a running count, for operators)."""

    @staticmethod
    def parse(text: str | None) -> "RepairCursor":
        if not text:
            return RepairCursor()
        values = json.loads(text)
        return RepairCursor(
            values["gaps_stream_id"],
            int(values["check_storage_id"]),
            int(values.get("refused_gap_events", 0)),
        )

    def dump(self) -> str:
        return json.dumps(
            {
                "gaps_stream_id": self.gaps_stream_id,
                "check_storage_id": self.check_storage_id,
                "refused_gap_events": self.refused_gap_events,
            }
        )


@dataclass
class RepairPlan:
    """Partitions to reload, each with the id of the event that asked (the attempt's key)."""

    requests: dict[str, tuple[str, str]] = field(default_factory=dict)
    """partition key -> (trigger id, reason); the newest trigger per partition wins."""
    skipped: list[str] = field(default_factory=list)

    def add(self, partition_key: str, trigger: str, reason: str) -> None:
        self.requests[partition_key] = (trigger, reason)

    @property
    def full(self) -> bool:
        """No room for one more event's hours within the tick's bound on runs."""
        return len(self.requests) > MAX_RUN_REQUESTS_PER_TICK - MAX_HOURS_PER_EVENT


def build_gap_repair_sensor(partitions: dg.HourlyPartitionsDefinition) -> dg.SensorDefinition:
    @dg.sensor(
        name=SENSOR_NAME,
        asset_selection=[BRONZE_AGG_TRADES],
        minimum_interval_seconds=60,
        # On from the start: it only acts on holes, and an unreachable Redis only skips
        # the live input for a tick.
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Reloads bronze.agg_trades hours that the live service reported gaps in "
            "(Redis gaps:{SYM}) or that failed the completeness proof."
        ),
    )
    def bronze_gap_repair(
        context: dg.SensorEvaluationContext, redis: RedisResource, lakehouse: LakehouseResource
    ) -> dg.SensorResult:
        cursor = RepairCursor.parse(context.cursor)
        plan = RepairPlan()
        symbol = lakehouse.settings().symbol
        existing = set(partitions.get_partition_keys(dynamic_partitions_store=context.instance))
        cursor.gaps_stream_id, refused = _plan_from_gap_stream(
            context, redis.client(), symbol, cursor.gaps_stream_id, plan
        )
        cursor.refused_gap_events += refused
        cursor.check_storage_id = _plan_from_failed_checks(context, cursor.check_storage_id, plan)
        run_requests = []
        for partition_key, (trigger, reason) in sorted(plan.requests.items()):
            if partition_key not in existing:
                plan.skipped.append(f"{partition_key}: not a partition yet")
                continue
            attempts = _attempts_so_far(context.instance, partition_key)
            if attempts >= MAX_ATTEMPTS:
                plan.skipped.append(f"{partition_key}: {attempts} repairs already, giving up")
                continue
            run_requests.append(
                dg.RunRequest(
                    run_key=f"repair:{partition_key}:{trigger}",
                    partition_key=partition_key,
                    asset_selection=[BRONZE_AGG_TRADES],
                    tags={
                        REPAIR_TAG: partition_key,
                        "btc/repair_attempt": str(attempts + 1),
                        "btc/repair_reason": reason[:200],
                    },
                )
            )
        for note in plan.skipped:
            context.log.warning("not repairing %s", note)
        return dg.SensorResult(run_requests=run_requests, cursor=cursor.dump())

    return bronze_gap_repair


def _plan_from_gap_stream(
    context: dg.SensorEvaluationContext,
    client: Redis,
    symbol: str,
    after_id: str,
    plan: RepairPlan,
) -> tuple[str, int]:
    """Add the hours of new ``gaps:{SYM}`` entries; return the last stream id read past and
    how many entries were refused as malformed."""
    try:
        entries = client.xrange(gaps_key(symbol), min=f"({after_id}", count=EVENTS_PER_TICK)
    except RedisError as error:
        # The lake's own proof still runs; live gaps are read again from the same id next time.
        context.log.warning("gap stream unavailable, skipping it this tick: %s", error)
        return after_id, 0
    now_us = time.time_ns() // 1000
    last_id, refused, not_reloaded = after_id, 0, 0
    for raw_id, raw_fields in entries:
        if plan.full:
            break  # the rest next tick, from last_id
        stream_id = entry_id(raw_id)
        last_id = stream_id  # read past, whatever the entry holds
        try:
            event = GapEvent.from_entry(
                stream_id, decode_fields(stream_id, raw_fields), now_us=now_us
            )
            if not event.needs_reload:
                not_reloaded += 1
                continue
            for hour in event.hours():
                plan.add(
                    hour_partition_key(hour),
                    f"gap-{stream_id}",
                    f"live {event.kind} gap {event.detail}".strip(),
                )
        except MalformedGapEvent as error:
            refused += 1
            context.log.warning("refusing malformed gap event %s", error)
        except Exception:
            # A bug, not bad input; still one entry must not stop every later repair.
            refused += 1
            context.log.exception("gap event %s failed, skipping it", stream_id)
    if not_reloaded:
        context.log.info("%d gap events lost no aggregate trade: nothing to reload", not_reloaded)
    return last_id, refused


def _plan_from_failed_checks(
    context: dg.SensorEvaluationContext, after_storage_id: int, plan: RepairPlan
) -> int:
    """Add the partitions named by completeness failures newer than ``after_storage_id``."""
    records = context.instance.event_log_storage.get_asset_check_execution_history(
        COMPLETENESS_KEY, limit=EVENTS_PER_TICK
    )
    newest = after_storage_id
    for record in sorted(records, key=lambda r: r.id):
        if record.id <= after_storage_id or record.event is None:
            continue
        if plan.full:
            break  # the rest next tick, from newest
        newest = max(newest, record.id)
        evaluation = record.event.dagster_event.event_specific_data
        if evaluation is None or getattr(evaluation, "passed", True):
            continue
        metadata = evaluation.metadata
        partitions = _json(metadata, PARTITIONS_TO_REPAIR)
        missing = _json(metadata, "missing_ranges")
        if len(partitions) > MAX_HOURS_PER_EVENT:
            # A check names a run's hours and their neighbours, far fewer than this.
            context.log.warning(
                "check %d names %d partitions; repairing the first %d",
                record.id,
                len(partitions),
                MAX_HOURS_PER_EVENT,
            )
        for partition_key in partitions[:MAX_HOURS_PER_EVENT]:
            plan.add(partition_key, f"check-{record.id}", f"ids missing: {', '.join(missing)}")
    return newest


def _json(metadata: dict, key: str) -> list[str]:
    return list(metadata[key].value) if key in metadata else []


def _attempts_so_far(instance: dg.DagsterInstance, partition_key: str) -> int:
    """Repair runs of the partition in the last ``ATTEMPT_WINDOW``."""
    since = dt.datetime.now(dt.UTC) - ATTEMPT_WINDOW
    runs = dg.RunsFilter(tags={REPAIR_TAG: partition_key}, created_after=since)
    return len(instance.get_run_ids(filters=runs))
