"""The bus writer against a real private ``redis-server`` taken away and brought back.

Redis is stopped (connections refused at once, so no attempt half-lands and the streams
after the restart hold exactly what the writer wrote), events accumulate, Redis starts
again on the same port, and the writer drains. Encoding is counted through a wrapper that
calls the real ``encode_block``; pipeline sizes through a wrapper on the real pipeline's
``execute``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError

from btc_platform_tests.realtime.archive import events
from btc_platform_tests.realtime.archive.events import DAY_START_US, SYMBOL
from btc_platform_tests.support.redis_server import RedisServer
from realtime.bus import writer as writer_module
from realtime.bus.codec import decode_block
from realtime.bus.writer import BusWriter
from realtime.ingest.gaps import GapRecord
from realtime.service.metrics import Metrics
from realtime.state.keys import Keys

KEYS = Keys(SYMBOL)
FRAME = 10
"""Events per ``publish`` call, as ingest hands them over (one frame's worth)."""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path / "redis") as private:
        yield private


@pytest.fixture
def encoded(monkeypatch) -> list[int]:
    """Events passed to ``encode_block``, one entry per call (the real function still runs)."""
    calls: list[int] = []
    real = writer_module.encode_block

    def counting(chunk, **options):
        calls.append(len(chunk))
        return real(chunk, **options)

    monkeypatch.setattr(writer_module, "encode_block", counting)
    return calls


def _client(server: RedisServer) -> aioredis.Redis:
    # Outages here are a stopped server (refused at once): the timeouts only bound a hang,
    # and must not fail a flush that a loaded machine's Redis answers slowly.
    return aioredis.Redis.from_url(server.url, socket_timeout=30.0, socket_connect_timeout=30.0)


def _publish(writer: BusWriter, kind: str, batch: list) -> None:
    for start in range(0, len(batch), FRAME):
        writer.publish(kind, batch[start : start + FRAME])


def _on_bus(server: RedisServer, kind: str) -> list:
    client = redis.Redis.from_url(server.url)
    try:
        entries = client.xrange(KEYS.bus(kind))
    finally:
        client.close()
    return [event for _, fields in entries for event in decode_block(fields, SYMBOL)]


def _sample(metrics: Metrics, name: str, queue: str) -> float | None:
    return metrics.registry.get_sample_value(name, {"queue": queue})


async def _failed_flush(writer: BusWriter) -> None:
    with pytest.raises((RedisError, OSError)):
        await writer.flush()


async def test_an_outage_loses_nothing_below_the_cap_and_each_event_is_encoded_once(
    server, encoded
):
    metrics = Metrics()
    client = _client(server)
    writer = BusWriter(client, KEYS, metrics, max_pending=100_000)
    trades = events.trades(1, 3000, DAY_START_US)
    quotes = events.quotes(1, 300, DAY_START_US)
    try:
        port = server.port
        server.stop()
        for attempt in range(3):  # events keep coming while every flush fails
            _publish(writer, "trade", trades[attempt * 1000 : (attempt + 1) * 1000])
            _publish(writer, "bba", quotes[attempt * 100 : (attempt + 1) * 100])
            await _failed_flush(writer)
        server.start(port=port)
        await writer.flush()
    finally:
        await client.aclose()

    assert _on_bus(server, "trade") == trades
    assert _on_bus(server, "bba") == quotes
    assert sum(encoded) == len(trades) + len(quotes)  # once each, across three failed tries
    assert writer.dropped == 0
    assert writer.pending_events == 0
    assert _sample(metrics, "btc_queue_dropped_total", "bus-trade") in (None, 0.0)
    assert _sample(metrics, "btc_queue_depth", "bus-trade") == 0


async def test_overflow_drops_the_oldest_events_of_any_stream_and_counts_them(server):
    metrics = Metrics()
    client = _client(server)
    writer = BusWriter(client, KEYS, metrics, max_pending=80)
    trades = events.trades(1, 60, DAY_START_US)  # the oldest
    quotes = events.quotes(1, 60, DAY_START_US)  # newer, on another stream
    try:
        port = server.port
        server.stop()
        _publish(writer, "trade", trades)
        _publish(writer, "bba", quotes)
        assert writer.pending_events == 80
        assert _sample(metrics, "btc_queue_depth", "bus-trade") == 20
        assert _sample(metrics, "btc_queue_depth", "bus-bba") == 60
        await _failed_flush(writer)
        server.start(port=port)
        await writer.flush()
    finally:
        await client.aclose()

    assert _on_bus(server, "trade") == trades[40:]
    assert _on_bus(server, "bba") == quotes
    assert writer.dropped == 40
    assert _sample(metrics, "btc_queue_dropped_total", "bus-trade") == 40
    assert _sample(metrics, "btc_queue_dropped_total", "bus-bba") in (None, 0.0)


async def test_blocks_being_retried_are_kept_and_overflow_drops_the_oldest_behind_them(
    server, encoded
):
    metrics = Metrics()
    client = _client(server)
    writer = BusWriter(client, KEYS, metrics, max_pending=3000, pipeline_blocks=1)
    trades = events.trades(1, 5000, DAY_START_US)
    try:
        port = server.port
        server.stop()
        _publish(writer, "trade", trades[:2000])
        await _failed_flush(writer)  # trades[:2000] are now one encoded block, in flight
        _publish(writer, "trade", trades[2000:])
        server.start(port=port)
        await writer.flush()
    finally:
        await client.aclose()

    assert _on_bus(server, "trade") == trades[:2000] + trades[4000:]
    assert writer.dropped == 2000
    assert _sample(metrics, "btc_queue_dropped_total", "bus-trade") == 2000
    assert sum(encoded) == 3000


async def test_a_backlog_larger_than_one_pipeline_drains_in_bounded_chunks(
    server, encoded, monkeypatch
):
    executes: list[int] = []
    real_execute = Pipeline.execute

    async def recording(self, *args, **kwargs):
        executes.append(len(self.command_stack))
        return await real_execute(self, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "execute", recording)
    turns = 0
    encoded_at: list[int] = []
    real_encode = writer_module.encode_block

    def noting_turn(chunk, **options):
        encoded_at.append(turns)
        return real_encode(chunk, **options)

    async def ticker() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    metrics = Metrics()
    client = _client(server)
    writer = BusWriter(client, KEYS, metrics)
    monkeypatch.setattr(writer_module, "encode_block", noting_turn)
    trades = events.trades(1, 40 * writer_module.MAX_BLOCK_EVENTS, DAY_START_US)
    _publish(writer, "trade", trades)
    loop_turns = asyncio.create_task(ticker())
    try:
        await writer.flush()
    finally:
        loop_turns.cancel()
        await client.aclose()

    assert _on_bus(server, "trade") == trades
    assert len(executes) > 1  # not one pipeline of forty blocks
    assert max(executes) <= writer.pipeline_blocks < 40
    per_turn = [encoded_at.count(turn) for turn in set(encoded_at)]
    assert max(per_turn) <= writer.pipeline_blocks  # the loop runs between chunks


async def test_the_gap_queue_is_bounded_and_drops_its_oldest(server):
    metrics = Metrics()
    client = _client(server)
    writer = BusWriter(client, KEYS, metrics, max_gaps=5)
    records = [
        GapRecord("trade", DAY_START_US, DAY_START_US + 1, first, first + 1, DAY_START_US)
        for first in range(8)
    ]
    try:
        port = server.port
        server.stop()
        for record in records:
            writer.gap(record)
        await _failed_flush(writer)
        server.start(port=port)
        await writer.flush()
    finally:
        await client.aclose()

    check = redis.Redis.from_url(server.url)
    try:
        written = [fields[b"first_id"] for _, fields in check.xrange(KEYS.gaps)]
    finally:
        check.close()
    assert written == [str(first).encode() for first in range(3, 8)]
    assert _sample(metrics, "btc_queue_dropped_total", "bus-gaps") == 3
    assert _sample(metrics, "btc_queue_depth", "bus-gaps") == 0
