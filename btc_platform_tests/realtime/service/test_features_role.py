"""The features role fed from the bus by a writer that lies, against the real parts: a
private Redis for the hot state and the local exchange (paused) for REST.

The events are written by the test (any writer of the bus streams can be wrong), so each
lie is exact; the exchange's tape ends at the market's "now" and the live trades continue
it, as ingest's would.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import numpy as np
import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from realtime.binance.rest import BinanceRestClient, RetryPolicy
from realtime.features.bars import BarBuilder
from realtime.features.contract import CONTRACT_V1
from realtime.market.events import BestBidAsk, Trade
from realtime.market.quarantine import QUARANTINE_CAPACITY
from realtime.service import features_role
from realtime.service.features_role import MAX_HELD_TRADES, MAX_UNWRITTEN, FeaturesRole
from realtime.service.metrics import Metrics
from realtime.service.settings import RealtimeSettings
from realtime.sim.exchange import ExchangeConfig, LocalExchange
from realtime.sim.market_model import MarketModel, MarketParams
from realtime.state.hot_state import unpack_vector
from realtime.state.keys import HISTORY_TTL_S
from realtime.state.writer import HotStateWriter

START_US = 1_767_225_600_000_000
US = 1_000_000
DAY_US = 86_400 * US
N_TRADES = CONTRACT_V1.names.index("n_trades_1s")
PRICE_E8 = 9_800_000_000_000
CLOSED_PORT_URL = "http://127.0.0.1:1"
"""REST unreachable (an outage, an IP ban): every connection is refused."""


class World:
    """The role, the exchange it asks, and the live trades that continue the exchange's tape."""

    def __init__(self, role: FeaturesRole, exchange: LocalExchange) -> None:
        self.role = role
        self.exchange = exchange
        tape = exchange.market.tape.trades()
        self.next_id = int(tape.trade_id[-1]) + 1
        self.next_us = (int(tape.time_us[-1]) // US + 1) * US
        self.fed: dict[int, int] = {}
        """Trades fed per second."""
        self.next_update_id = exchange.market.book.last_update_id + 1

    def trade(self, *, trade_id: int | None = None, time_us: int | None = None) -> Trade:
        trade_id = self.next_id if trade_id is None else trade_id
        time_us = self.next_us if time_us is None else time_us
        return Trade(self.exchange.symbol, trade_id, PRICE_E8, 100_000, False, time_us, time_us)

    def live(self, count: int, step_us: int = 250_000) -> list[Trade]:
        """The next ``count`` real trades, ``step_us`` apart."""
        trades = []
        for _ in range(count):
            trades.append(self.trade())
            self.fed[self.next_us // US] = self.fed.get(self.next_us // US, 0) + 1
            self.next_id += 1
            self.next_us += step_us
        return trades

    def quote(self, time_us: int) -> BestBidAsk:
        """The next best bid/ask, at ``time_us``."""
        self.next_update_id += 1
        return BestBidAsk(
            self.exchange.symbol, time_us, self.next_update_id - 1, PRICE_E8 - 10**6, 10**8,
            PRICE_E8 + 10**6, 10**8,
        )  # fmt: skip

    async def apply(self, trades: list[Trade]) -> None:
        """Apply ``trades`` as one bus read, wait for the quarantine, publish."""
        self.role.apply_batches([("trade", trades)])
        await settled(self.role)
        self.role._collect_tasks()
        await self.role.publish()


async def settled(role: FeaturesRole) -> None:
    quarantine = getattr(role, "quarantine", None)
    if quarantine is not None:
        await asyncio.wait_for(quarantine.drained(), timeout=30)


def sample(features: FeaturesRole, name: str, **labels: str) -> float:
    return features.metrics.registry.get_sample_value(name, labels) or 0.0


async def published_trades(client: aioredis.Redis, role: FeaturesRole) -> dict[int, int]:
    """``n_trades_1s`` of every ``features:{SYM}:{ts}`` in Redis, by second."""
    prefix = role.keys.features_at(0)[:-1]
    keys = [key async for key in client.scan_iter(match=prefix + "*", count=1000)]
    values = await client.mget(keys) if keys else []
    return {
        int(key.decode().rsplit(":", 1)[1]): int(unpack_vector(value)[N_TRADES])
        for key, value in zip(keys, values, strict=True)
    }


@contextlib.asynccontextmanager
async def world(
    redis_server, rest_url: str | None = None, **settings: object
) -> AsyncIterator[tuple[World, aioredis.Redis]]:
    """``rest_url`` (default: the exchange's) is asked once per call, without retries."""
    params = MarketParams(seed=21, start_time_us=START_US)
    config = ExchangeConfig(speed=0, history_s=20, weight_limit=None)
    async with LocalExchange(MarketModel(params), config) as exchange:
        client = aioredis.Redis.from_url(redis_server.url)
        await client.flushall()
        values: dict[str, object] = {
            "binance_rest_url": exchange.rest_url,
            "redis_url": redis_server.url,
            "symbol": exchange.symbol,
            "warmup_s": 0,
        }
        rest = BinanceRestClient(
            rest_url or exchange.rest_url, retry=RetryPolicy(max_attempts=1, base_delay_s=0.01)
        )
        role = FeaturesRole(
            RealtimeSettings(**(values | settings)),  # type: ignore[arg-type]
            client,
            Metrics(),
            rest=rest,
        )
        try:
            yield World(role, exchange), client
        finally:
            quarantine = getattr(role, "quarantine", None)
            if quarantine is not None:
                await quarantine.close()
            await role.rest.close()
            await client.aclose()


def fed_and_closed(world: World) -> dict[int, int]:
    last = world.role._last_closed
    assert last is not None
    return {second: n for second, n in world.fed.items() if second <= last}


async def test_a_trade_a_day_ahead_is_rejected_and_blocks_nothing(redis_server):
    """Issue 15, finding 1: one event a day ahead closed 86,398 empty seconds on the loop,
    and every real trade after it was dropped as late."""
    async with world(redis_server) as (w, client):
        await w.apply(w.live(12))
        lie = w.trade(time_us=w.next_us + DAY_US)  # the next id, stamped a day ahead
        await w.apply([lie, *w.live(20)])
        await w.apply(w.live(12))
        role = w.role
        assert role.seconds_published + len(role._unwritten) < 20  # no day of empty seconds
        assert sample(role, "btc_late_events_total") == 0
        published = await published_trades(client, role)
        assert published == fed_and_closed(w)  # every real trade in its second, none lost
        assert max(published) < (w.next_us + DAY_US) // US - 3600
        assert sample(role, "btc_rejected_input_total", source="bus", kind="time_ahead") == 1


async def test_a_trade_id_far_ahead_is_rejected_and_not_adopted(redis_server):
    """Issue 15, finding 7: the role adopted a lying trade id, then dropped every real trade
    as already seen (and set out to backfill a trillion ids)."""
    async with world(redis_server) as (w, client):
        await w.apply(w.live(12))
        lie = w.trade(trade_id=w.next_id + 10**12)
        await w.apply([lie, *w.live(20)])
        await w.apply(w.live(12))
        role = w.role
        assert role._backfill is None
        assert role._last_trade_id == w.next_id - 1
        assert sample(role, "btc_backfilled_trades_total") == 0
        assert await published_trades(client, role) == fed_and_closed(w)
        assert sample(role, "btc_rejected_input_total", source="bus", kind="id_jump") == 1


async def test_a_far_jump_that_got_through_closes_a_bounded_number_of_seconds(redis_server):
    """Even believed (here: limits wide open), a long jump materialises only what the
    engine's windows and the hot state's history need, and the vectors equal a full feed."""
    wide_open = {"max_clock_skew_ms": 10 * DAY_US // 1000}
    async with world(redis_server, **wide_open) as (w, _):
        role = w.role
        reference = FeaturesRole(role.settings, role.client, Metrics(), rest=role.rest)
        reference.bars = BarBuilder()  # every empty second, one by one
        jump_s = 2 * HISTORY_TTL_S + 500
        batches = [w.live(12)]
        w.next_us += jump_s * US
        batches.append(w.live(12))
        for trades in batches:
            for features in (role, reference):
                features.apply_batches([("trade", trades)])
                await settled(features)
        assert reference.features.engine.ts_sec == role.features.engine.ts_sec
        assert len(role._unwritten) <= HISTORY_TTL_S + 12
        assert sample(role, "btc_late_events_total") == 0
        expected = {closed.ts_sec: closed.vector for closed in reference._history}
        assert [closed.ts_sec for closed in role._history] == list(expected)
        for closed in role._history:
            np.testing.assert_array_equal(closed.vector, expected[closed.ts_sec])
        await reference.quarantine.close()


async def test_held_trades_are_bounded_and_the_dropped_ones_come_back_as_a_gap(redis_server):
    async with world(redis_server) as (w, _):
        await w.apply(w.live(12))
        role = w.role
        w.next_id += 1  # a trade lost on the way: the role holds the rest while it recovers it
        flood = w.live(MAX_HELD_TRADES + 5, step_us=1)
        role.apply_batches([("trade", flood)])
        assert role._backfill is not None
        assert len(role._held_trades) == MAX_HELD_TRADES
        assert sample(role, "btc_queue_dropped_total", queue="held_trades") == 5
        assert sample(role, "btc_queue_depth", queue="held_trades") == MAX_HELD_TRADES
        async with asyncio.timeout(60):
            while role._backfill is not None:
                await asyncio.sleep(0.05)
                role._collect_tasks()
        assert role._last_trade_id == flood[MAX_HELD_TRADES].trade_id - 1
        # The next trade shows the dropped ones as a gap, fetched by id like any other.
        role.apply_batches([("trade", w.live(1))])
        assert role._backfill_range == (flood[-5].trade_id, flood[-1].trade_id)


async def test_unwritten_seconds_are_bounded_while_redis_is_away(redis_server):
    """Seconds kept for Redis have a size; past it the next write is a re-anchor of the
    history, which holds the same seconds."""
    wide_open = {"max_clock_skew_ms": 10 * DAY_US // 1000}
    async with world(redis_server, **wide_open) as (w, _):
        role = w.role
        away = aioredis.Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))
        role.writer = HotStateWriter(away, role.keys)
        for _ in range(8):
            role.apply_batches([("trade", w.live(60, step_us=US))])
            await settled(role)
            await role.publish()
        assert len(role._unwritten) == MAX_UNWRITTEN
        assert sample(role, "btc_queue_dropped_total", queue="unwritten_seconds") > 0
        assert role._needs_reanchor
        assert sample(role, "btc_redis_errors_total", role="features") == 8
        await away.aclose()


async def test_doubted_events_wait_for_rest_in_a_bounded_quarantine(redis_server):
    """The held events have a size; with REST unreachable they are settled by their own
    consensus, and each one is applied (and counted) once."""
    async with world(redis_server, rest_url=CLOSED_PORT_URL) as (w, _):
        role = w.role
        role.apply_batches([("trade", w.live(QUARANTINE_CAPACITY + 5, step_us=1))])
        assert role.quarantine.pending == QUARANTINE_CAPACITY
        assert sample(role, "btc_queue_dropped_total", queue="bus_quarantine") == 5
        assert sample(role, "btc_queue_depth", queue="bus_quarantine") == QUARANTINE_CAPACITY
        assert role.clock.newest_us is None  # nothing believed before the evidence
        assert role.plausibility.newest_us is None
        assert role.events_applied == 0
        await settled(role)
        assert role.quarantine.pending == 0
        assert role.events_applied == QUARANTINE_CAPACITY
        assert role._last_trade_id == w.next_id - 6  # the dropped five: the newest


async def test_with_rest_unreachable_real_events_are_settled_by_their_own_consensus(redis_server):
    """Issue 15 review: with REST down every first event was doubted and held for good, and
    everything after it; the role published nothing while the stream worked."""
    async with world(redis_server, rest_url=CLOSED_PORT_URL) as (w, client):
        for _ in range(3):
            await w.apply(w.live(12))
        role = w.role
        assert role.quarantine.settled_by == {"consensus": 2}  # the first time, the first id
        assert role.quarantine.rejected == 0
        published = await published_trades(client, role)
        assert published == fed_and_closed(w)
        assert sum(published.values()) >= 24


@pytest.mark.parametrize(
    ("lie", "kind"),
    [({"time_us": DAY_US}, "time_ahead"), ({"trade_id": 10**12}, "id_jump")],
    ids=["a_day_ahead", "an_id_far_ahead"],
)
async def test_with_rest_unreachable_a_lying_first_event_is_outvoted(redis_server, lie, kind):
    """A single lying first event must not become the anchor, REST or not: the real events
    held behind it outvote it."""
    async with world(redis_server, rest_url=CLOSED_PORT_URL) as (w, client):
        shifted = {field: getattr(w, "next_us" if field == "time_us" else "next_id") + offset
                   for field, offset in lie.items()}  # fmt: skip
        await w.apply([w.trade(**shifted), *w.live(20)])
        await w.apply(w.live(12))
        role = w.role
        assert sample(role, "btc_rejected_input_total", source="bus", kind=kind) == 1
        assert role._last_trade_id == w.next_id - 1
        published = await published_trades(client, role)
        assert published == fed_and_closed(w)
        assert max(published) < w.next_us // US + 60


async def test_events_applied_counts_each_applied_event_once(redis_server):
    """Repeats (a bus rewind) are not applied; a doubted event counts once, when applied."""
    async with world(redis_server) as (w, _):
        first = w.live(10)
        await w.apply(first)  # doubted first, then re-admitted
        assert w.role.events_applied == 10
        await w.apply([*first[5:], *w.live(3)])  # five read again
        assert w.role.events_applied == 13


async def published_vectors(client: aioredis.Redis, role: FeaturesRole, seconds: list[int]):
    payloads = await client.mget([role.keys.features_at(second) for second in seconds])
    return {
        second: None if payload is None else np.array(unpack_vector(payload))
        for second, payload in zip(seconds, payloads, strict=True)
    }


async def test_a_trade_after_its_second_closed_corrects_the_published_history(redis_server):
    """Issue 15, chaos ``stall_trades``: the trade stream stalled while best bid/asks went
    on, the role closed the stalled second after two quiet seconds, and the stalled trades
    that came after were dropped as late: the published ``n_trades_1s`` stayed short of the
    tape. Now they are folded in and the history re-anchored: every vector, from that second
    on, is bit for bit the one of a role that had them in time."""
    async with world(redis_server) as (w, client):
        role = w.role
        reference = FeaturesRole(role.settings, role.client, Metrics(), rest=role.rest)

        async def feed(features: FeaturesRole, trades: list[Trade], quotes: list[BestBidAsk]):
            features.apply_batches([("trade", trades), ("bba", quotes)])
            await settled(features)

        first = w.live(1)
        opening = [w.quote(first[0].transact_time_us + 1)]
        history = w.live(264)  # more than the 60 s windows
        stalled_sec = w.next_us // US + 1
        w.next_us = stalled_sec * US + 200_000
        on_time = w.live(1, step_us=0)
        # The first stalled fill continues the on-time one's taker order (same time, price and
        # side): in time they are one aggregate trade, the largest of the minute.
        stalled = w.live(2, step_us=400_000)
        quiet = [w.quote(stalled_sec * US + k * US + 500_000) for k in range(4)]
        w.next_us = (stalled_sec + 4) * US
        later = w.live(12)
        late_quote = w.quote(stalled_sec * US + 900_000)  # dropped: the next quote supersedes
        closing = [w.quote((stalled_sec + 7) * US + k * US + 100_000) for k in range(2)]

        try:
            for features in (role, reference):
                await feed(features, first, opening)
                await feed(features, history, [])
            await feed(role, on_time, quiet)
            await feed(reference, on_time + stalled, quiet)
            await role.publish()
            assert role._last_closed == stalled_sec  # closed by the quiet rule, short of 2
            assert (await published_trades(client, role))[stalled_sec] == 1
            await feed(role, stalled + later, [late_quote, *closing])
            await feed(reference, later, closing)
            await role.publish()

            assert (await published_trades(client, role))[stalled_sec] == 3
            assert sample(role, "btc_late_events_total") == 1  # the quote, not the trades
            assert sample(reference, "btc_late_events_total") == 0
            assert role.clock.newest_us == reference.clock.newest_us == closing[-1].event_time_us
            assert role._last_closed == reference._last_closed > stalled_sec + 3
            expected = {closed.ts_sec: np.array(closed.vector) for closed in reference._history}
            published = await published_vectors(client, role, list(expected))
            for second, vector in expected.items():
                assert published[second] is not None, second
                assert published[second].tobytes() == vector.tobytes(), second
            large = CONTRACT_V1.names.index("large_trade_flag_5s")
            assert expected[stalled_sec][large] == 1.0  # the joined order is the largest
            corrected = sample(role, "btc_feature_seconds_corrected_total")
            assert 5 <= corrected <= role._last_closed - stalled_sec + 1
            assert role.reanchors == 1
        finally:
            await reference.quarantine.close()


def tape_trade(w: World, index: int) -> Trade:
    """The exchange's own trade at ``index`` of its tape (REST serves it by id)."""
    tape = w.exchange.market.tape.trades()
    time_us = int(tape.time_us[index])
    return Trade(
        w.exchange.symbol, int(tape.trade_id[index]), int(tape.price_e8[index]),
        int(tape.qty_e8[index]), bool(tape.is_buyer_maker[index]), time_us, time_us,
    )  # fmt: skip


async def test_a_capped_recovery_marks_only_the_abandoned_seconds_incomplete(
    redis_server, monkeypatch
):
    """Issue 15 review: a hole larger than ``MAX_BACKFILL_IDS`` is recovered in its newest ids
    only, and the recovery was then always judged incomplete (it was compared with the whole
    hole), marking every second after it incomplete too."""
    async with world(redis_server) as (w, _):
        tape = w.exchange.market.tape.trades()
        seconds = (tape.time_us // US).tolist()
        first = seconds[0]

        def first_index_of(second: int) -> int:
            return seconds.index(next(s for s in seconds if s >= second))

        gap_from, kept_from, gap_to = (first_index_of(first + k) for k in (5, 9, 13))
        monkeypatch.setattr(features_role, "MAX_BACKFILL_IDS", gap_to - kept_from)
        role = w.role
        await w.apply([tape_trade(w, i) for i in range(gap_from)])
        await w.apply([tape_trade(w, i) for i in range(gap_to, len(seconds))])
        assert role._backfill_range == (
            int(tape.trade_id[kept_from]),
            int(tape.trade_id[gap_to - 1]),
        )
        async with asyncio.timeout(60):
            while role._backfill is not None:
                await asyncio.sleep(0.05)
                role._collect_tasks()
        await w.apply(w.live(12))
        assert sample(role, "btc_backfilled_trades_total") == gap_to - kept_from
        flags = {closed.ts_sec: closed.flags.trades_complete for closed in role._history}
        abandoned_through = seconds[kept_from]
        assert [s for s, complete in flags.items() if not complete] == list(
            range(seconds[gap_from - 1], abandoned_through + 1)
        )
        assert all(flags[s] for s in flags if s > abandoned_through)
        assert max(flags) > abandoned_through + 3


async def test_run_leaves_a_rest_client_passed_in_open(redis_server):
    """The REST client is its owner's: ``run`` closes only one it made itself."""
    async with world(redis_server) as (w, _):
        role = w.role
        await role.rest.server_time_us()
        session = role.rest._session  # the owner's connection pool
        task = asyncio.create_task(role.run())
        await w.apply(w.live(12))
        role.stop()
        await asyncio.wait_for(task, 60)
        assert session is not None
        assert role.rest._session is session
        assert not session.closed
