"""The gap repair sensor against poison: a real Dagster instance, the real code location's
sensor, and a private Redis holding the ``gaps:{SYM}`` stream.

No entry may stop the sensor: a malformed one is refused (counted in the cursor, logged)
and the cursor moves past it in the same tick; gaps that lost no aggregate trade reload
nothing; one tick asks for a bounded number of runs and leaves the rest for the next.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis

dg = pytest.importorskip("dagster", reason="the batch extra is not installed")

from btc_platform.definitions import build_definitions  # noqa: E402
from btc_platform.defs.bronze.checks import hour_partition_key  # noqa: E402
from btc_platform.defs.recovery.sensors import (  # noqa: E402
    MAX_RUN_REQUESTS_PER_TICK,
    SENSOR_NAME,
)
from btc_platform.defs.resources import LakehouseResource, RedisResource  # noqa: E402
from btc_platform.lakehouse.gap_events import MAX_HOURS_PER_EVENT, gaps_key  # noqa: E402

HOUR_US = 3_600_000_000
SYMBOL = "BTCUSDT"
KEY = gaps_key(SYMBOL)


def hours_ago(n: int) -> int:
    """The start (µs) of the hour ``n`` hours before this one: a partition that exists."""
    return (time.time_ns() // 1000 // HOUR_US - n) * HOUR_US


def trade_gap(start_us: int, end_us: int | None = None) -> dict[str, str]:
    return {
        "kind": "trade",
        "first_time_us": str(start_us),
        "last_time_us": str(start_us + 60_000_000 if end_us is None else end_us),
        "first_id": "101",
        "last_id": "104",
    }


@dataclass
class Repair:
    defs: dg.Definitions
    instance: dg.DagsterInstance
    redis: redis.Redis

    def tick(self, cursor: str | None) -> dg.SensorResult:
        context = dg.build_sensor_context(
            instance=self.instance,
            definitions=self.defs,
            resources=self.defs.resources,
            cursor=cursor,
        )
        with context:
            return self.defs.resolve_sensor_def(SENSOR_NAME).evaluate_tick(context)

    def baseline(self) -> str:
        """A cursor past everything so far (the first tick reads the stream from its start)."""
        return self.tick(None).cursor


@pytest.fixture
def repair(tmp_path, redis_server, redis_client) -> Iterator[Repair]:
    history_start = (dt.datetime.now(dt.UTC) - dt.timedelta(days=40)).date()
    defs = build_definitions(
        history_start,
        resources={
            "redis": RedisResource(url=redis_server.url),
            "lakehouse": LakehouseResource(data_dir=str(tmp_path), symbol=SYMBOL),
        },
    )
    with dg.instance_for_test() as instance:
        yield Repair(defs, instance, redis_client)


def requested(tick) -> list[str]:
    return sorted(request.partition_key for request in tick.run_requests)


NOW_US = hours_ago(0)
POISON = {
    "nanosecond times": {
        "kind": "trade",
        "first_time_us": str(hours_ago(5) * 1000),
        "last_time_us": str(hours_ago(5) * 1000 + 10_000_000_000),
    },
    "a µs start and a nanosecond end": trade_gap(hours_ago(5), hours_ago(5) * 1000),
    "millisecond times": trade_gap(hours_ago(5) // 1000),
    "before Binance's first day": trade_gap(1_000_000, 2_000_000),
    "a day in the future": trade_gap(NOW_US + 24 * HOUR_US),
    "longer than the bound": trade_gap(hours_ago(900), hours_ago(900 - MAX_HOURS_PER_EVENT)),
    "a non-UTF-8 kind": {**trade_gap(hours_ago(5)), "kind": b"tr\xffde"},
    "a non-UTF-8 field name": {**trade_gap(hours_ago(5)), b"\xfe\xff": "x"},
    "a 5000-digit time": {"kind": "trade", "first_time_us": "9" * 5000, "last_time_us": "1"},
    "no times": {"kind": "trade"},
}


@pytest.mark.parametrize("poison", POISON.values(), ids=POISON.keys())
def test_a_malformed_entry_is_refused_and_the_entries_after_it_are_repaired(repair, poison):
    cursor = repair.baseline()
    repair.redis.xadd(KEY, poison)
    repair.redis.xadd(KEY, trade_gap(hours_ago(3)))
    last_id = repair.redis.xadd(KEY, trade_gap(hours_ago(7)))

    tick = repair.tick(cursor)

    assert requested(tick) == sorted(
        [hour_partition_key(hours_ago(3)), hour_partition_key(hours_ago(7))]
    )
    state = json.loads(tick.cursor)
    assert state["gaps_stream_id"] == last_id.decode()
    assert state["refused_gap_events"] == json.loads(cursor)["refused_gap_events"] + 1
    # Read past once: the next tick does not meet the poison again.
    again = repair.tick(tick.cursor)
    assert again.run_requests == []
    assert json.loads(again.cursor) == state


@pytest.mark.parametrize("kind", ["silence", "depth"])
def test_a_gap_that_lost_no_aggregate_trade_reloads_nothing(repair, kind):
    cursor = repair.baseline()
    repair.redis.xadd(KEY, {**trade_gap(hours_ago(4)), "kind": kind})
    last_id = repair.redis.xadd(KEY, trade_gap(hours_ago(6)))

    tick = repair.tick(cursor)

    assert requested(tick) == [hour_partition_key(hours_ago(6))]
    state = json.loads(tick.cursor)
    assert state["gaps_stream_id"] == last_id.decode()
    assert state["refused_gap_events"] == 0


def test_a_tick_asks_for_a_bounded_number_of_runs_and_the_next_ticks_the_rest(repair):
    cursor = repair.baseline()
    hours = [hours_ago(3 + 2 * k) for k in range(3 * MAX_RUN_REQUESTS_PER_TICK)]
    for hour in hours:
        repair.redis.xadd(KEY, trade_gap(hour))
    # One event as long as the bound: it must still fit a tick whatever came before it.
    long_start = hours_ago(3 + 2 * len(hours) + MAX_HOURS_PER_EVENT)
    repair.redis.xadd(KEY, trade_gap(long_start, long_start + MAX_HOURS_PER_EVENT * HOUR_US - 1))
    expected = {hour_partition_key(h) for h in hours}
    expected |= {hour_partition_key(long_start + k * HOUR_US) for k in range(MAX_HOURS_PER_EVENT)}

    seen: list[str] = []
    for _ in range(len(expected)):  # every tick makes progress: this many always suffice
        tick = repair.tick(cursor)
        cursor = tick.cursor
        if not tick.run_requests:
            break
        assert len(tick.run_requests) <= MAX_RUN_REQUESTS_PER_TICK
        seen += requested(tick)
    assert sorted(seen) == sorted(expected)  # nothing lost, nothing twice
