"""Poison gap events: malformed ``gaps:{SYM}`` entries, then one tick of the lake's repair sensor.

The entries are what a buggy or hostile writer of the stream could leave: a range whose end
is in nanoseconds (hundreds of millions of hours), both ends in nanoseconds, bytes that are
not UTF-8, an end beyond any integer a list could hold. A good entry follows them: the
sensor must step over the poison, request the good entry's hour and save a cursor past all
of it, or the same entries are read again every minute and repairs stop.

The tick runs ``bronze_gap_repair``'s own evaluation from the project's code location
(``build_definitions``, ``build_sensor_context`` with a real ``DagsterInstance.ephemeral()``;
no daemon) in a child process under a memory limit and a
timeout, since the finding is that it may try to allocate without bound.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import redis

US_PER_HOUR = 3_600_000_000
CHILD_MEMORY_BYTES = 3 << 30
CHILD_TIMEOUT_S = 180.0

_CHILD = """
import datetime as dt, json, sys, time
import dagster as dg
from btc_platform.definitions import build_definitions
from btc_platform.defs.recovery.sensors import SENSOR_NAME, RepairCursor
from btc_platform.defs.resources import LakehouseResource, RedisResource

redis_url, data_dir, after_id = sys.argv[1:4]
defs = build_definitions(
    history_start=dt.datetime.now(dt.UTC).date() - dt.timedelta(days=2),
    resources={
        "redis": RedisResource(url=redis_url),
        "lakehouse": LakehouseResource(data_dir=data_dir, symbol="BTCUSDT"),
    },
)
sensor = defs.resolve_sensor_def(SENSOR_NAME)
with dg.DagsterInstance.ephemeral() as instance, dg.build_sensor_context(
    instance=instance,
    definitions=defs,
    resources=defs.resources,
    cursor=RepairCursor(gaps_stream_id=after_id).dump(),
) as context:
    started = time.perf_counter()
    tick = sensor.evaluate_tick(context)
    print(json.dumps({
        "seconds": round(time.perf_counter() - started, 3),
        "cursor": tick.cursor,
        "run_requests": sorted(r.partition_key for r in tick.run_requests or []),
    }))
"""


def poison_entries(now_us: int) -> list[dict]:
    now_ns = now_us * 1000
    return [
        # A writer that mixed units: the end in ns, ~500 million hours after the start.
        {"kind": "trade", "first_id": "1", "last_id": "2",
         "first_time_us": str(now_us), "last_time_us": str(now_ns)},
        {"kind": "trade", "first_time_us": str(now_ns), "last_time_us": str(now_ns + 10**9)},
        {b"kind": b"\xff\xfe", b"first_time_us": b"\xff\x00", b"last_time_us": b"\x80"},
        {"kind": "silence", "first_time_us": "-5", "last_time_us": "9" * 30},
    ]  # fmt: skip


def inject_and_evaluate(url: str, gaps_key: str, data_dir: Path, root: Path) -> dict:
    """XADD the poison and one good entry, run one sensor tick; what the tick did."""
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        last = client.xrevrange(gaps_key, count=1)
        after_id = last[0][0].decode() if last else "0-0"
        now_us = time.time_ns() // 1000
        poison_ids = [client.xadd(gaps_key, fields).decode() for fields in poison_entries(now_us)]
        good_start = (now_us // US_PER_HOUR - 2) * US_PER_HOUR + 60_000_000
        good_id = client.xadd(
            gaps_key,
            {
                "kind": "trade",
                "first_id": "10",
                "last_id": "12",
                "first_time_us": str(good_start),
                "last_time_us": str(good_start + 1_000_000),
            },
        ).decode()
    finally:
        client.close()
    good_hour = _partition_key(good_start)
    outcome: dict = {"poison_entries": len(poison_ids), "good_entry_hour": good_hour}
    started = time.monotonic()
    try:
        child = subprocess.run(
            [sys.executable, "-c", _CHILD, url, str(data_dir), after_id],
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT_S,
            cwd=root,
            preexec_fn=_limit_memory,
        )
    except subprocess.TimeoutExpired:
        return outcome | {
            "evaluated": False,
            "error": f"no result within {CHILD_TIMEOUT_S:.0f} s",
            "cursor_saved": False,
            "good_entry_repaired": False,
        }
    outcome["wall_s"] = round(time.monotonic() - started, 1)
    if child.returncode != 0:
        lines = [line for line in child.stderr.splitlines() if line.strip()]
        return outcome | {
            "evaluated": False,
            "error": lines[-1][:300] if lines else f"exit status {child.returncode}",
            "cursor_saved": False,
            "good_entry_repaired": False,
        }
    tick = json.loads(child.stdout.strip().splitlines()[-1])
    cursor = json.loads(tick["cursor"]) if tick["cursor"] else {}
    saved_id = cursor.get("gaps_stream_id", after_id)
    return outcome | {
        "evaluated": True,
        "error": None,
        "tick_s": tick["seconds"],
        "cursor_saved": _stream_id(saved_id) >= _stream_id(good_id),
        "good_entry_repaired": good_hour in tick["run_requests"],
        "run_requests": len(tick["run_requests"]),
    }


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY_BYTES, CHILD_MEMORY_BYTES))


def _partition_key(hour_us: int) -> str:
    seconds = hour_us // 1_000_000
    return time.strftime("%Y-%m-%d-%H:00", time.gmtime(seconds))


def _stream_id(text: str) -> tuple[int, int]:
    milliseconds, _, sequence = text.partition("-")
    return int(milliseconds), int(sequence or 0)
