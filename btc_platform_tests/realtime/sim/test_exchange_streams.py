"""The exchange's SBE WebSocket side, over a real socket: handshake, control, keep-alive, faults.

Keep-alive rules are shortened (tens of milliseconds) where a peer fails on purpose, so that
the closed connection shows up in well under a second; where a peer behaves, the limits are
generous and the test waits for events the exchange counts, so a loaded machine cannot fail
it. Nothing sleeps to make time pass.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math

import aiohttp
import pytest

from btc_platform_tests.support.captures import CAPTURE_JSON as CAPTURE
from btc_platform_tests.support.stream_client import API_KEY, post_fault, stream_socket
from btc_platform_tests.support.waiting import eventually
from realtime.binance.sbe import SbeDecodeError, decode
from realtime.clock import SystemClock
from realtime.market.events import TradeBatch
from realtime.sim.capture_replay import CaptureReplay
from realtime.sim.exchange import ExchangeConfig, LocalExchange
from realtime.sim.streams import StreamRules

US = 1_000_000


def exchange(speed: float = 0, **rules: float) -> LocalExchange:
    config = ExchangeConfig(
        speed=speed, history_s=10, weight_limit=None, stream_rules=StreamRules(**rules)
    )
    return LocalExchange(CaptureReplay(CAPTURE), config)


async def next_text(ws: aiohttp.ClientWebSocketResponse) -> dict:
    while True:
        message = await ws.receive(timeout=10)
        if message.type is aiohttp.WSMsgType.TEXT:
            return json.loads(message.data)
        assert message.type is aiohttp.WSMsgType.BINARY, message


async def binary_frames(ws: aiohttp.ClientWebSocketResponse, count: int) -> list[bytes]:
    frames = []
    while len(frames) < count:
        message = await ws.receive(timeout=10)
        assert message.type is aiohttp.WSMsgType.BINARY, message
        frames.append(message.data)
    return frames


async def test_the_handshake_needs_an_api_key() -> None:
    async with exchange() as ex, aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(f"{ex.stream_url}/ws/btcusdt@trade")
        assert refused.value.status == 400


async def test_an_unknown_stream_is_refused_at_the_handshake() -> None:
    async with exchange() as ex, aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(
                f"{ex.stream_url}/ws/btcusdt@kline_1m", headers={"X-MBX-APIKEY": API_KEY}
            )
        assert refused.value.status == 400


async def test_one_stream_path_sends_sbe_frames_of_that_stream_only() -> None:
    async with (
        exchange() as ex,
        aiohttp.ClientSession() as session,
        session.ws_connect(
            f"{ex.stream_url}/ws/btcusdt@trade", headers={"X-MBX-APIKEY": API_KEY}
        ) as ws,
    ):
        await ex.advance_to(ex.now_us() + 5 * US)
        frames = await binary_frames(ws, 20)
    events = [decode(frame) for frame in frames]
    assert all(isinstance(e, TradeBatch) and len(e.trades) == 1 for e in events)
    ids = [e.trades[0].trade_id for e in events]
    assert ids == list(range(ids[0], ids[0] + 20))


async def test_subscribe_list_and_unsubscribe_as_json_text_frames() -> None:
    # Seven requests: above Binance's five a second, which has its own test below.
    async with (
        exchange(max_client_messages_per_s=50) as ex,
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{ex.stream_url}/ws", headers={"X-MBX-APIKEY": API_KEY}) as ws,
    ):
        await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@depth"], "id": 1}))
        assert await next_text(ws) == {"result": None, "id": 1}
        await ws.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": "list"}))
        assert await next_text(ws) == {"result": ["btcusdt@depth"], "id": "list"}
        await ex.advance_to(ex.now_us() + 2 * US)
        assert decode((await binary_frames(ws, 1))[0]).__class__.__name__ == "DepthDiff"
        await ws.send_str(
            json.dumps({"method": "UNSUBSCRIBE", "params": ["btcusdt@depth"], "id": 2})
        )
        reply = await next_text(ws)  # diffs already queued may come first
        assert reply == {"result": None, "id": 2}
        await ws.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 3}))
        assert await next_text(ws) == {"result": [], "id": 3}
        await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@nope"], "id": 4}))
        error = await next_text(ws)
        assert (error["id"], error["code"]) == (4, 2)
        assert "btcusdt@nope" in error["msg"]
        await ws.send_str("{not json")
        assert (await next_text(ws))["code"] == 3


async def test_the_server_pings_and_closes_a_connection_that_never_pongs() -> None:
    async with (
        exchange(ping_interval_s=0.05, pong_timeout_s=0.2) as ex,
        stream_socket(ex.stream_url, ["btcusdt@trade"], autoping=False) as ws,
    ):
        kinds = []
        while True:
            message = await ws.receive(timeout=5)
            kinds.append(message.type)
            if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                break
        assert aiohttp.WSMsgType.PING in kinds
        assert ex.hub.closed_reasons.get("pong timeout") == 1


async def test_a_client_that_answers_pings_stays_connected() -> None:
    # Twenty pings a second. What is tested is that each answer is taken as a pong (it
    # refreshes the connection's last pong, which the timeout is measured from; the test
    # above shows the timeout closing) and nothing closes the socket, not how fast the
    # answers come: the limits are generous, so a loaded machine cannot fail them.
    rules = {"ping_interval_s": 0.05, "pong_timeout_s": 30.0, "max_client_messages_per_s": 1000}
    async with (
        exchange(**rules) as ex,
        stream_socket(ex.stream_url, ["btcusdt@trade"]) as ws,
    ):
        await eventually(lambda: len(ex.hub.connections) == 1, "the exchange's connection")
        (connection,) = ex.hub.connections
        reading = asyncio.create_task(ws.receive())  # aiohttp answers pings as it reads
        try:
            await eventually(lambda: ex.hub.pongs_received >= 10 or reading.done(), "ten pongs")
            assert not reading.done(), reading.result()  # no frame, no close on a quiet stream
        finally:
            reading.cancel()
        assert ex.hub.pings_sent >= ex.hub.pongs_received >= 10
        assert connection.last_pong_at > connection.opened_at
        assert not ws.closed
        assert ex.hub.closed_reasons == {}


async def test_a_connection_is_closed_at_its_maximum_lifetime() -> None:
    async with (
        exchange(max_lifetime_s=0.3) as ex,
        stream_socket(ex.stream_url, ["btcusdt@trade"]) as ws,
    ):
        message = await ws.receive(timeout=5)
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert ex.hub.closed_reasons == {"lifetime reached": 1}


async def test_too_many_client_messages_close_the_connection() -> None:
    async with exchange() as ex, stream_socket(ex.stream_url, ["btcusdt@trade"]) as ws:
        for request_id in range(7):
            await ws.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": request_id}))
        while (message := await ws.receive(timeout=5)).type is aiohttp.WSMsgType.TEXT:
            pass
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert ex.hub.closed_reasons == {"too many client messages": 1}


async def test_server_shutdown_notice_and_disconnect_faults() -> None:
    async with exchange() as ex, stream_socket(ex.stream_url, ["btcusdt@trade"]) as ws:
        await post_fault(ex.admin_url, {"fault": "server_shutdown"})
        notice = await next_text(ws)
        assert notice == {"e": "serverShutdown", "E": ex.now_us() // 1000}
        await post_fault(ex.admin_url, {"fault": "disconnect"})
        message = await ws.receive(timeout=5)
        assert message.type in (
            aiohttp.WSMsgType.CLOSE,
            aiohttp.WSMsgType.CLOSED,
            aiohttp.WSMsgType.ERROR,
        )
        assert ex.hub.closed_reasons == {"disconnect fault": 1}


async def test_duplicate_reorder_and_truncate_act_on_the_next_frames_of_one_stream() -> None:
    async with exchange() as ex, stream_socket(ex.stream_url, ["btcusdt@trade"]) as ws:
        await post_fault(
            ex.admin_url, {"fault": "duplicate", "stream": "btcusdt@trade", "count": 1}
        )
        await post_fault(
            ex.admin_url, {"fault": "truncate", "stream": "btcusdt@trade", "keep_bytes": 30}
        )
        await post_fault(ex.admin_url, {"fault": "reorder", "stream": "btcusdt@trade", "count": 1})
        await ex.advance_to(ex.now_us() + 10 * US)
        frames = await binary_frames(ws, 8)
    # Truncate goes first (its frame is cut), then the duplicate, then the reorder swaps two.
    assert len(frames[0]) == 30
    with pytest.raises(SbeDecodeError):
        decode(frames[0])
    ids = [decode(frame).trades[0].trade_id for frame in frames[1:]]
    first = ids[0]
    assert ids[:5] == [first, first, first + 2, first + 1, first + 3]
    assert ids[5:] == [first + 4, first + 5]


class SteppedClock(SystemClock):
    """Real sleeps, and a monotonic time that moves only when the test steps it."""

    def __init__(self) -> None:
        self.now_s = 0.0

    def monotonic(self) -> float:
        return self.now_s


async def test_a_stalled_stream_goes_quiet_then_delivers_everything_in_order() -> None:
    async with exchange() as ex:
        # The stall is timed on the hub's clock: stepped here, so the frames are played
        # inside the stall however long the machine takes between the fault and the play.
        ex.hub.clock = clock = SteppedClock()
        async with stream_socket(ex.stream_url, ["btcusdt@trade"]) as ws:
            await post_fault(
                ex.admin_url, {"fault": "stall", "stream": "btcusdt@trade", "seconds": 0.1}
            )
            await ex.advance_to(ex.now_us() + 5 * US)
            assert ex.hub.faults["btcusdt@trade"].stalled  # held back, not sent
            with pytest.raises(TimeoutError):
                await ws.receive(timeout=0.15)
            # Frames held during the stall go out, in order, with the first frame after it.
            clock.now_s += 0.1
            await ex.advance_to(ex.now_us() + 5 * US)
            frames = await binary_frames(ws, 10)
    ids = [decode(frame).trades[0].trade_id for frame in frames]
    assert ids == list(range(ids[0], ids[0] + 10))


async def test_unlimited_speed_waits_for_a_subscriber_then_streams_everything() -> None:
    async with exchange(speed=math.inf) as ex:
        history_events = ex.events_played
        for _ in range(20):
            await asyncio.sleep(0)  # the pump gets its turns, and must not play to no one
        assert ex.events_played == history_events
        async with stream_socket(ex.stream_url, ["btcusdt@trade"]) as ws:
            frames = await binary_frames(ws, 100)
        assert ex.events_played > history_events
        ids = [decode(frame).trades[0].trade_id for frame in frames]
        assert ids == list(range(ids[0], ids[0] + 100))


async def test_lying_frames_go_out_well_formed_while_the_tape_keeps_the_truth() -> None:
    year_us = 365 * 86_400 * US
    async with exchange() as ex, stream_socket(ex.stream_url, ["btcusdt@trade"]) as ws:
        await post_fault(
            ex.admin_url,
            {"fault": "time_shift", "stream": "btcusdt@trade", "count": 2, "shift_s": 365 * 86_400},
        )
        await post_fault(
            ex.admin_url,
            {"fault": "id_jump", "stream": "btcusdt@trade", "count": 1, "jump": 10**12},
        )
        await ex.advance_to(ex.now_us() + 10 * US)
        frames = await binary_frames(ws, 6)
    batches = [decode(frame) for frame in frames]
    trades = [batch.trades[0] for batch in batches]
    tape = ex.market.tape.trades()
    truth = {
        int(trade_id): int(time_us)
        for trade_id, time_us in zip(tape.trade_id, tape.time_us, strict=True)
    }
    first = trades[0].trade_id
    # The time shift acts first (two frames), then the id jump (one frame), then the truth.
    assert [t.trade_id for t in trades] == [
        first,
        first + 1,
        first + 2 + 10**12,
        *range(first + 3, first + 6),
    ]
    assert [b.transact_time_us - truth[first + i] for i, b in enumerate(batches[:2])] == [
        year_us,
        year_us,
    ]
    assert batches[2].transact_time_us == truth[first + 2]
    assert all(b.transact_time_us == truth[b.trades[0].trade_id] for b in batches[3:])
    assert first + 2 + 10**12 not in truth  # the tape never traded the jumped id


async def test_garbage_frames_come_between_the_real_ones_and_fail_to_decode() -> None:
    async with exchange() as ex, stream_socket(ex.stream_url, ["btcusdt@depth"]) as ws:
        await post_fault(ex.admin_url, {"fault": "garbage", "stream": "btcusdt@depth", "count": 2})
        await ex.advance_to(ex.now_us() + 5 * US)
        frames = await binary_frames(ws, 6)
    outcomes = []
    for frame in frames:
        try:
            outcomes.append(decode(frame))
        except SbeDecodeError:
            outcomes.append(None)
    assert [outcome is None for outcome in outcomes] == [True, False, True, False, False, False]
    diffs = [outcome for outcome in outcomes if outcome is not None]
    # Nothing real is lost or reordered: the diff chain is unbroken.
    assert all(
        later.first_update_id == earlier.last_update_id + 1
        for earlier, later in itertools.pairwise(diffs)
    )
