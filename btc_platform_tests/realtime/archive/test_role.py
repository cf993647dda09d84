"""The archive role against a real private ``redis-server``: bus blocks into segments, a
malformed entry counted and skipped, and a Redis restart survived without losing what the
restarted streams carry or the predictions appended meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from btc_platform_tests.realtime.archive import events
from btc_platform_tests.realtime.archive.events import DAY_START_US, SYMBOL, US_PER_S
from btc_platform_tests.support import redis_server as redis_server_module
from btc_platform_tests.support.redis_server import RedisServer
from realtime.archive.capture import CaptureWriters
from realtime.archive.reader import read_segments
from realtime.archive.role import ArchiveRole, segment_counter
from realtime.bus.codec import encode_block
from realtime.clock import VirtualClock
from realtime.service.metrics import Metrics
from realtime.state.keys import Keys

KEYS = Keys(SYMBOL)
DAY = (DAY_START_US, DAY_START_US + 86_400 * US_PER_S)
DEADLINE_S = 60.0
"""A hang guard only: every wait ends on a condition."""
BLOCK_MS = 200
"""Short blocking reads, so that stop() returns quickly."""


async def _until(condition: Callable[[], bool], what: str) -> None:
    """Wait for ``condition`` (polling; the role runs on real time against Redis)."""
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def _block(batch: list) -> dict:
    return encode_block(batch, source="sbe", ingest_ts_us=DAY_START_US)


def _capture(directory: Path, metrics: Metrics) -> CaptureWriters:
    # A clock stopped in the synthetic day (the wall clock's midnight would close every
    # segment at each flush), so segments close on close() only.
    return CaptureWriters(
        directory,
        max_age_s=3600,
        max_bytes=1 << 30,
        clock=VirtualClock(DAY_START_US / US_PER_S + 60),
        on_segment_closed=segment_counter(metrics),
    )


async def _stop(role: ArchiveRole, task: asyncio.Task) -> None:
    role.stop()
    await asyncio.wait_for(task, DEADLINE_S)


def _ids(directory: Path, kind: str, column: str) -> list[int]:
    return read_segments(directory, kind, *DAY)[column].to_pylist()


async def test_bus_blocks_of_every_stream_land_in_segments_and_a_malformed_one_is_skipped(
    tmp_path, redis_server, redis_client
):
    # Entries already on the bus before the role starts at "$" are not its to archive.
    redis_client.xadd(KEYS.bus("trade"), _block(events.trades(1, 5, DAY_START_US)))
    metrics = Metrics()
    capture = _capture(tmp_path, metrics)
    client = aioredis.Redis.from_url(redis_server.url)
    role = ArchiveRole(client, KEYS, capture, metrics, block_ms=BLOCK_MS)
    task = asyncio.create_task(role.run())
    try:
        await _until(lambda: "$" not in role.reader.cursors.values(), "the start to resolve")
        trades = events.trades(100, 30, DAY_START_US)
        depth = events.depth(7_000, 12, DAY_START_US)
        quotes = events.quotes(50, 8, DAY_START_US)
        redis_client.xadd(KEYS.bus("trade"), _block(trades[:10]))
        redis_client.xadd(KEYS.bus("trade"), {b"n": 3, b"a": b"\x01not avro"})
        redis_client.xadd(KEYS.bus("trade"), _block(trades[10:]))
        redis_client.xadd(KEYS.bus("depth"), _block(depth))
        redis_client.xadd(KEYS.bus("bba"), _block(quotes))
        await _until(lambda: role.events_archived == 50, "50 events archived")
        assert role.malformed == 1
    finally:
        await _stop(role, task)
        await client.aclose()
    capture.close()

    assert _ids(tmp_path, "trades", "trade_id") == list(range(100, 130))
    assert _ids(tmp_path, "depth", "last_update_id") == [e.last_update_id for e in depth]
    assert _ids(tmp_path, "best_bid_ask", "book_update_id") == [q.book_update_id for q in quotes]
    for kind in ("trades", "depth", "best_bid_ask"):
        assert (
            metrics.registry.get_sample_value("btc_capture_segments_total", {"kind": kind}) == 1
        ), kind


async def test_a_redis_restart_is_survived_and_the_new_stream_is_read_from_its_start(
    tmp_path, monkeypatch
):
    metrics = Metrics()
    capture = _capture(tmp_path / "capture", metrics)
    with RedisServer(tmp_path / "redis") as server:
        port = server.port
        producer = aioredis.Redis.from_url(server.url)
        client = aioredis.Redis.from_url(server.url)
        role = ArchiveRole(client, KEYS, capture, metrics, block_ms=BLOCK_MS, backoff_max_s=0.2)
        task = asyncio.create_task(role.run())
        try:
            await _until(lambda: "$" not in role.reader.cursors.values(), "the start to resolve")
            await producer.xadd(KEYS.bus("trade"), _block(events.trades(1, 10, DAY_START_US)))
            await _until(lambda: role.events_archived == 10, "the first block")

            server.stop()
            await _until(lambda: role.redis_errors >= 2, "the role to notice Redis is gone")
            # The infer role appends predictions directly: Redis being away does not matter.
            prediction = events.predictions(1, DAY_START_US // US_PER_S)[0]
            capture.append_prediction(prediction)

            monkeypatch.setattr(redis_server_module, "free_port", lambda: port)
            server.start()
            await producer.aclose()
            producer = aioredis.Redis.from_url(server.url)
            # Ids far below the role's cursor: only a rewind after the restart reads them.
            await producer.xadd(
                KEYS.bus("trade"), _block(events.trades(11, 5, DAY_START_US)), id="1-1"
            )
            await _until(lambda: role.events_archived == 15, "the block after the restart")
        finally:
            await _stop(role, task)
            await client.aclose()
            await producer.aclose()
    capture.close()

    assert _ids(tmp_path / "capture", "trades", "trade_id") == list(range(1, 16))
    assert _ids(tmp_path / "capture", "predictions", "ts_sec") == [prediction.ts_sec]
    errors = metrics.registry.get_sample_value("btc_redis_errors_total", {"role": "archive"})
    assert errors == role.redis_errors >= 2
