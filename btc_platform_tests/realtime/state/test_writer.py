"""Hot-state writes against a real Redis: whole values only, atomic re-anchors, the lock."""

from __future__ import annotations

import asyncio
import math

import pytest
import redis.asyncio as aioredis

from realtime.features.bars import empty_bar
from realtime.features.contract import CONTRACT_V1
from realtime.market.events import DepthSnapshot
from realtime.market.order_book import OrderBook
from realtime.state import hot_state
from realtime.state.keys import Keys
from realtime.state.writer import ClosedSecond, HotState, HotStateWriter, ReanchorBusy

KEYS = Keys("BTCUSDT")
N = len(CONTRACT_V1.names)


def book(levels: int, update_id: int) -> OrderBook:
    bids = tuple((100_000 - i, 1 + i) for i in range(levels))
    asks = tuple((100_001 + i, 1 + i) for i in range(levels))
    return OrderBook.from_snapshot(DepthSnapshot("BTCUSDT", None, update_id, bids, asks))


def state(ts: int, seconds: int, levels: int) -> HotState:
    vectors = [
        ClosedSecond(t, [float(t)] * (N - 1) + [math.nan], hot_state.FeatureFlags(True, True))
        for t in range(ts - seconds + 1, ts + 1)
    ]
    bars = [empty_bar(t) for t in range(ts - 4, ts + 1)]
    return HotState(vectors, bars, book(levels, ts), True, ts * 1_000_000, ts * 1_000_000)


@pytest.fixture
async def client(redis_server):
    client = aioredis.Redis.from_url(redis_server.url)
    await client.flushall()
    yield client
    await client.aclose()


async def test_a_write_round_trips_the_vector_bits(client):
    writer = HotStateWriter(client, KEYS)
    await writer.write(state(1000, 1, 10))
    latest = hot_state.parse_features(await client.hgetall(KEYS.features))
    assert latest.ts_sec == 1000
    assert latest.vector[:-1] == (1000.0,) * (N - 1)
    assert math.isnan(latest.vector[-1])
    assert 0 < await client.ttl(KEYS.features) <= 120
    assert 0 < await client.ttl(KEYS.features_at(1000)) <= 300
    assert await client.ttl(KEYS.book) == -1  # the book has no TTL
    ob = await client.hgetall(KEYS.book)
    assert ob[b"valid"] == b"1"
    assert ob[b"bid_9_price"]
    assert ob[b"ask_9_price"]
    assert hot_state.is_complete(ob)


async def test_readers_never_see_a_missing_or_half_written_key_during_reanchors(client):
    writer = HotStateWriter(client, KEYS)
    await writer.write(state(1000, 1, 10))
    reader = aioredis.Redis.from_url(_url(client))
    seen: list[str] = []
    stop = asyncio.Event()

    async def read_forever() -> int:
        reads = 0
        while not stop.is_set():
            async with reader.pipeline(transaction=False) as pipe:
                pipe.hgetall(KEYS.book)
                pipe.hgetall(KEYS.features)
                pipe.hgetall(KEYS.trade_stats("5s"))
                book_fields, feature_fields, stats = await pipe.execute()
            for name, fields in (("ob", book_fields), ("feat", feature_fields), ("tr", stats)):
                if not hot_state.is_complete(fields):
                    seen.append(f"{name}: {sorted(fields)}")
            # One transaction wrote them: the features and the trade windows are one second.
            if feature_fields.get(b"ts") != stats.get(b"ts"):
                seen.append(f"mixed: feat {feature_fields.get(b'ts')} tr {stats.get(b'ts')}")
            reads += 1
            await asyncio.sleep(0)
        return reads

    task = asyncio.create_task(read_forever())
    for step in range(1, 201):
        # Alternate books of 10 and 3 levels: a half-applied swap would leave stale levels.
        levels = 10 if step % 2 else 3
        if step % 5 == 0:
            await writer.reanchor(state(1000 + step, 120, levels))
        else:
            await writer.write(state(1000 + step, 1, levels))
    stop.set()
    reads = await task
    await reader.aclose()
    assert reads > 100
    assert seen == []
    latest = hot_state.parse_features(await client.hgetall(KEYS.features))
    assert latest.ts_sec == 1200
    assert await client.keys("*:new:*") == []  # nothing staged is left behind
    assert await client.exists(KEYS.reanchor_lock) == 0


async def test_a_reanchor_waits_for_nobody_else_holding_the_lock(client):
    await client.set(KEYS.reanchor_lock, "other-writer", px=10_000)
    writer = HotStateWriter(client, KEYS)
    with pytest.raises(ReanchorBusy):
        await writer.reanchor(state(1000, 5, 10))
    assert await client.get(KEYS.reanchor_lock) == b"other-writer"  # not released by us
    assert await client.exists(KEYS.features) == 0


def _url(client: aioredis.Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs.get('db', 0)}"
