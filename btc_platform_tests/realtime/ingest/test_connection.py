"""The combined-stream URL, and one connection against a scripted WebSocket server.

The server plays a script per test (frames, then a close, an abort or nothing), so each end
of a connection can be checked on its own: which frames arrive, in what order and type,
how the end is classified, and that the client session goes with the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from itertools import groupby

import aiohttp
import pytest
from aiohttp import web

from btc_platform_tests.support.waiting import HANG_GUARD_S, eventually
from realtime.ingest.connection import (
    API_KEY_HEADER,
    FRAMES_PER_TURN,
    MAX_FRAME_BYTES,
    StreamConnection,
    StreamSocket,
    combined_stream_url,
    open_socket,
    stream_names,
)

Script = Callable[[web.WebSocketResponse], Awaitable[None]]


def test_one_connection_carries_the_four_sbe_streams_of_the_symbol_in_lower_case() -> None:
    assert stream_names("BTCUSDT") == (
        "btcusdt@trade",
        "btcusdt@bestBidAsk",
        "btcusdt@depth",
        "btcusdt@depth20",
    )
    assert combined_stream_url("wss://stream-sbe.binance.com:9443/", "BTCUSDT") == (
        "wss://stream-sbe.binance.com:9443/stream?streams="
        "btcusdt@trade/btcusdt@bestBidAsk/btcusdt@depth/btcusdt@depth20"
    )


class ScriptedServer:
    """A WebSocket endpoint that checks the API key, then runs ``script`` on the socket."""

    def __init__(self, script: Script, *, autoping: bool = True) -> None:
        self.script = script
        self.autoping = autoping
        self.api_keys: list[str | None] = []
        self.client_close_code: int | None = None
        self.done = asyncio.Event()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        key = request.headers.get(API_KEY_HEADER)
        self.api_keys.append(key)
        if key is None:
            return web.Response(status=400, text='{"code":-2015,"msg":"Invalid API-key"}')
        ws = web.WebSocketResponse(autoping=self.autoping)
        await ws.prepare(request)
        try:
            await self.script(ws)
        finally:
            self.client_close_code = ws.close_code
            self.done.set()
        return ws


@contextlib.asynccontextmanager
async def serving(
    script: Script, *, autoping: bool = True
) -> AsyncIterator[tuple[ScriptedServer, str]]:
    server = ScriptedServer(script, autoping=autoping)
    app = web.Application()
    app.router.add_get("/stream", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield server, f"ws://127.0.0.1:{port}/stream?streams=btcusdt@trade"
    finally:
        await runner.cleanup()


class Recorder:
    """The connection's callbacks: frames as received, and each end."""

    def __init__(self) -> None:
        self.frames: list[bytes | str] = []
        self.ends: list[str | None] = []
        self.ended = asyncio.Event()

    def on_frame(self, connection: StreamConnection, frame: bytes | str) -> None:
        self.frames.append(frame)

    def on_end(self, connection: StreamConnection) -> None:
        self.ends.append(connection.end_reason)
        self.ended.set()


async def connect(url: str, recorder: Recorder, *, start: bool = True) -> StreamConnection:
    socket = await open_socket(url, "local-test-key")
    connection = StreamConnection(
        1, socket, 0.0, on_frame=recorder.on_frame, on_end=recorder.on_end
    )
    if start:
        connection.start()
    return connection


async def ended(recorder: Recorder) -> None:
    await asyncio.wait_for(recorder.ended.wait(), HANG_GUARD_S)
    await asyncio.sleep(0.05)  # a second ``on_end`` would have come by now


async def test_frames_arrive_in_order_binary_as_bytes_and_text_as_str_then_a_clean_close() -> None:
    async def script(ws: web.WebSocketResponse) -> None:
        await ws.send_bytes(b"\x01")
        await ws.send_str('{"e":"serverShutdown","E":1}')
        await ws.send_bytes(b"\x02")
        await ws.close(code=aiohttp.WSCloseCode.GOING_AWAY)

    recorder = Recorder()
    async with serving(script) as (server, url):
        connection = await connect(url, recorder)
        await ended(recorder)
        assert server.api_keys == ["local-test-key"]
    assert recorder.frames == [b"\x01", '{"e":"serverShutdown","E":1}', b"\x02"]
    assert recorder.ends == ["closed"]
    assert connection.socket.session.closed


async def test_a_close_with_an_error_code_ends_the_connection_with_an_error() -> None:
    async def script(ws: web.WebSocketResponse) -> None:
        await ws.send_bytes(b"\x01")
        await ws.close(code=aiohttp.WSCloseCode.INTERNAL_ERROR)

    recorder = Recorder()
    async with serving(script) as (_, url):
        connection = await connect(url, recorder)
        await ended(recorder)
    assert recorder.frames == [b"\x01"]
    assert recorder.ends == ["error"]
    assert connection.socket.session.closed


async def test_a_socket_lost_without_a_close_frame_is_an_error() -> None:
    recorder = Recorder()

    async def script(ws: web.WebSocketResponse) -> None:
        await ws.send_bytes(b"\x01")
        # Cut once the frame is in, however slow the machine: the end is under test here.
        await eventually(lambda: bool(recorder.frames), "the frame at the client")
        ws._req.transport.abort()  # type: ignore[union-attr]

    async with serving(script) as (_, url):
        connection = await connect(url, recorder)
        await ended(recorder)
    assert recorder.frames == [b"\x01"]
    assert recorder.ends == ["error"]
    assert connection.socket.session.closed


async def test_a_frame_over_the_size_limit_ends_the_connection_with_an_error() -> None:
    async def script(ws: web.WebSocketResponse) -> None:
        await ws.send_bytes(b"\x01")
        await ws.send_bytes(bytes(MAX_FRAME_BYTES + 1))
        await ws.receive()  # the client's close

    recorder = Recorder()
    async with serving(script) as (_, url):
        connection = await connect(url, recorder)
        await ended(recorder)
    assert recorder.frames == [b"\x01"]
    assert recorder.ends == ["error"]
    assert connection.socket.session.closed


async def test_close_is_a_clean_close_that_waits_for_the_reader_and_ends_once() -> None:
    async def script(ws: web.WebSocketResponse) -> None:
        await ws.send_bytes(b"\x01")
        async for _ in ws:  # until the client closes
            pass

    recorder = Recorder()
    async with serving(script) as (server, url):
        connection = await connect(url, recorder)
        await eventually(lambda: bool(recorder.frames), "the first frame")
        await connection.close()
        assert recorder.ends == ["closed"]  # the reader is done when ``close`` returns
        assert connection.socket.session.closed
        await asyncio.wait_for(server.done.wait(), HANG_GUARD_S)
        assert server.client_close_code == aiohttp.WSCloseCode.OK
        await connection.close()  # a second close changes nothing
    await asyncio.sleep(0.05)
    assert recorder.ends == ["closed"]


async def test_a_refused_handshake_raises_with_its_status_and_closes_the_session(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sessions: list[aiohttp.ClientSession] = []
    real_session = aiohttp.ClientSession

    def recording_session(*args: object, **kwargs: object) -> aiohttp.ClientSession:
        session = real_session(*args, **kwargs)  # type: ignore[arg-type]
        sessions.append(session)
        return session

    monkeypatch.setattr(aiohttp, "ClientSession", recording_session)

    async def script(ws: web.WebSocketResponse) -> None:  # pragma: no cover - never reached
        raise AssertionError("the handshake should have been refused")

    async with serving(script) as (server, url):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await open_socket(url, None)
    assert refused.value.status == 400
    assert server.api_keys == [None]  # no key, no header
    assert len(sessions) == 1
    assert sessions[0].closed


async def test_an_unreachable_server_raises_an_os_error() -> None:
    async with serving(lambda ws: asyncio.sleep(0)) as (_, url):
        pass  # the port is free again: connections are refused
    with pytest.raises(aiohttp.ClientConnectorError) as refused:
        await open_socket(url, "local-test-key")
    assert isinstance(refused.value, OSError)  # what the role catches


async def test_a_burst_of_queued_frames_gives_the_event_loop_back_between_turns() -> None:
    """Frames already queued are read without waiting; other tasks must still run."""
    count = 4 * FRAMES_PER_TURN

    async def script(ws: web.WebSocketResponse) -> None:
        for i in range(count):
            await ws.send_bytes(i.to_bytes(4, "big"))
        async for _ in ws:
            pass

    recorder = Recorder()
    turns = 0
    seen_at_turn: list[int] = []

    async def other_task() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    def on_frame(connection: StreamConnection, frame: bytes | str) -> None:
        recorder.on_frame(connection, frame)
        seen_at_turn.append(turns)

    async with serving(script) as (_, url):
        connection = await connect(url, recorder, start=False)
        # Every frame is in the client's queue before reading starts (aiohttp's own queue:
        # no public size), so the reader meets a burst it could read without yielding.
        queued = connection.socket.ws._reader._buffer  # type: ignore[attr-defined]
        await eventually(lambda: len(queued) >= count, "every frame queued at the client")
        connection._on_frame = on_frame
        ticker = asyncio.create_task(other_task())
        connection.start()
        await eventually(lambda: len(recorder.frames) >= count, "every frame read")
        ticker.cancel()
        await connection.close()
    assert recorder.frames == [i.to_bytes(4, "big") for i in range(count)]
    longest_turn = max(len(list(frames)) for _, frames in groupby(seen_at_turn))
    assert longest_turn <= FRAMES_PER_TURN


async def test_a_socket_closed_before_it_started_reading_closes_its_session() -> None:
    async def script(ws: web.WebSocketResponse) -> None:
        async for _ in ws:
            pass

    async with serving(script) as (_, url):
        socket = await open_socket(url, "local-test-key")
        assert isinstance(socket, StreamSocket)
        await socket.close()
        assert socket.ws.closed
        assert socket.session.closed


async def test_a_server_that_stops_answering_our_pings_is_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("realtime.ingest.connection.PING_INTERVAL_S", 0.1)
    pinged = asyncio.Event()

    async def script(ws: web.WebSocketResponse) -> None:
        await ws.send_bytes(b"\x01")
        async for message in ws:  # our pings arrive here, unanswered (no autoping)
            if message.type is aiohttp.WSMsgType.PING:
                pinged.set()

    recorder = Recorder()
    async with serving(script, autoping=False) as (_, url):
        connection = await connect(url, recorder)
        await ended(recorder)
        assert pinged.is_set()
    assert recorder.frames == [b"\x01"]
    assert recorder.ends == ["error"]
    assert connection.socket.session.closed
