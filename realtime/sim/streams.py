"""The local exchange's SBE WebSocket side: connections, subscriptions, keep-alive, faults.

Binance's rules (SPEC 1.2-1.4): the upgrade needs an ``X-MBX-APIKEY`` header (HTTP 400
without); ``/ws/<stream>`` or ``/stream?streams=a/b``; binary frames carry one SBE message
each, no envelope; control requests (SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS) are JSON
text frames answered in JSON; the server pings every ``ping_interval_s`` and closes a
connection whose pong has not come within ``pong_timeout_s``; a client may send at most
``max_client_messages_per_s`` frames a second (pings, pongs, control); a connection lives
at most ``max_lifetime_s``; ``serverShutdown`` is a JSON text frame.

Faults act per stream, before the fan-out, so every subscriber of a stream sees the same
frames missing, doubled, swapped, cut or late.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from realtime.clock import Clock, SystemClock
from realtime.sim.faults import Fault, FaultKind, StreamFaults

log = logging.getLogger(__name__)

STREAM_KINDS = ("trade", "bestBidAsk", "depth", "depth20")


@dataclass(frozen=True)
class StreamRules:
    """Connection rules; Binance's values by default, shortened in tests."""

    ping_interval_s: float = 20.0
    pong_timeout_s: float = 60.0
    max_lifetime_s: float = 24 * 3600.0
    max_client_messages_per_s: int = 5
    max_streams: int = 1024
    queue_frames: int = 100_000
    """A subscriber this far behind at a paced speed is too slow and is disconnected."""
    backpressure_frames: int = 512
    """At unlimited speed the market waits while a subscriber has this many frames queued."""
    require_api_key: bool = True


class UnknownStream(ValueError):
    """A stream name this exchange does not serve."""


def stream_names(symbol: str) -> tuple[str, ...]:
    return tuple(f"{symbol.lower()}@{kind}" for kind in STREAM_KINDS)


@dataclass(eq=False)
class StreamConnection:
    """One client socket: its streams, its outgoing queue, its keep-alive bookkeeping."""

    ws: web.WebSocketResponse
    streams: set[str]
    opened_at: float
    queue: asyncio.Queue[bytes | str | None]
    last_pong_at: float
    client_messages: deque[float] = field(default_factory=deque)
    closed_reason: str | None = None
    room: asyncio.Event = field(default_factory=asyncio.Event)


class StreamHub:
    """Every live connection, and the fan-out of frames to the ones subscribed."""

    def __init__(
        self,
        symbol: str,
        rules: StreamRules | None = None,
        *,
        now_ms: Callable[[], int],
        clock: Clock | None = None,
    ) -> None:
        self.symbol = symbol
        # Keep-alive, lifetime and stalls are about real sockets: wall time, not market time.
        self.clock = clock or SystemClock()
        self._now_ms = now_ms
        self.rules = rules or StreamRules()
        self.valid_streams = frozenset(stream_names(symbol))
        self.connections: set[StreamConnection] = set()
        self.faults: dict[str, StreamFaults] = {}
        self.frames_sent = 0
        self.connections_opened = 0
        self.closed_reasons: dict[str, int] = {}
        self.pings_sent = 0
        self.pongs_received = 0
        self._subscriber_event = asyncio.Event()

    # -- fan-out -------------------------------------------------------------------------------

    def subscribers(self, stream: str) -> int:
        return sum(1 for connection in self.connections if stream in connection.streams)

    async def wait_for_subscribers(self) -> None:
        """Return once at least one connection is subscribed to something."""
        while not any(connection.streams for connection in self.connections):
            self._subscriber_event.clear()
            await self._subscriber_event.wait()

    async def publish(self, stream: str, frame: bytes, *, backpressure: bool) -> None:
        """Send ``frame`` to every subscriber of ``stream``, through the stream's faults.

        With ``backpressure`` (unlimited speed) wait for queue room; otherwise a subscriber
        whose queue is full is too slow and is disconnected, as Binance does.
        """
        faults = self.faults.get(stream)
        frames = [frame] if faults is None else faults.process(frame, self.clock.monotonic())
        if not frames:
            return
        for connection in [c for c in self.connections if stream in c.streams]:
            for out in frames:
                if backpressure:
                    while connection.queue.qsize() >= self.rules.backpressure_frames:
                        if connection.closed_reason is not None:
                            break
                        connection.room.clear()
                        await connection.room.wait()
                    connection.queue.put_nowait(out)
                else:
                    try:
                        connection.queue.put_nowait(out)
                    except asyncio.QueueFull:
                        self._close(connection, "slow consumer")
                        break

    def apply_fault(self, fault: Fault) -> None:
        """Arm a stream fault, or act at once (disconnect, serverShutdown, clear)."""
        if fault.kind is FaultKind.DISCONNECT:
            for connection in list(self.connections):
                self._close(connection, "disconnect fault", abort=True)
        elif fault.kind is FaultKind.SERVER_SHUTDOWN:
            notice = json.dumps({"e": "serverShutdown", "E": self._now_ms()})
            for connection in self.connections:
                connection.queue.put_nowait(notice)
        elif fault.kind is FaultKind.CLEAR:
            self.clear_faults()
        else:
            assert fault.stream is not None
            if fault.stream not in self.valid_streams:
                raise UnknownStream(fault.stream)
            self.faults.setdefault(fault.stream, StreamFaults()).arm(fault, self.clock.monotonic())

    def clear_faults(self) -> None:
        """Lift every stream fault; frames held back by a reorder or a stall go out now."""
        for stream, faults in self.faults.items():
            for frame in faults.release():
                for connection in self.connections:
                    if stream in connection.streams:
                        with contextlib.suppress(asyncio.QueueFull):
                            connection.queue.put_nowait(frame)
        self.faults.clear()

    # -- connections ---------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """``/ws``, ``/ws/<stream>`` and ``/stream?streams=...``."""
        if self.rules.require_api_key and not request.headers.get("X-MBX-APIKEY"):
            return web.json_response(
                {
                    "code": -2014,
                    "msg": "API-key format invalid: the X-MBX-APIKEY header is required.",
                },
                status=400,
            )
        try:
            streams = self._requested_streams(request)
        except UnknownStream as error:
            return web.json_response({"code": -1121, "msg": f"Invalid stream: {error}"}, status=400)
        ws = web.WebSocketResponse(autoping=False, max_msg_size=4096)
        await ws.prepare(request)
        now = self.clock.monotonic()
        connection = StreamConnection(
            ws=ws,
            streams=set(streams),
            opened_at=now,
            queue=asyncio.Queue(self.rules.queue_frames),
            last_pong_at=now,
        )
        self.connections.add(connection)
        self.connections_opened += 1
        if connection.streams:
            self._subscriber_event.set()
        sender = asyncio.create_task(self._send_loop(connection))
        keepalive = asyncio.create_task(self._keepalive_loop(connection))
        try:
            await self._receive_loop(connection)
        finally:
            sender.cancel()
            keepalive.cancel()
            self.connections.discard(connection)
            reason = connection.closed_reason or "client closed"
            self.closed_reasons[reason] = self.closed_reasons.get(reason, 0) + 1
            if not ws.closed:
                await ws.close()
        return ws

    def _requested_streams(self, request: web.Request) -> list[str]:
        if request.path.startswith("/stream"):
            names = [name for name in request.query.get("streams", "").split("/") if name]
        else:
            names = [name for name in request.match_info.get("stream", "").split("/") if name]
        for name in names:
            if name not in self.valid_streams:
                raise UnknownStream(name)
        return names

    async def _receive_loop(self, connection: StreamConnection) -> None:
        ws = connection.ws
        async for message in ws:
            if self._over_message_rate(connection):
                self._close(connection, "too many client messages")
                break
            if message.type is aiohttp.WSMsgType.TEXT:
                reply = self._control(connection, message.data)
                connection.queue.put_nowait(json.dumps(reply))
            elif message.type is aiohttp.WSMsgType.PING:
                await ws.pong(message.data)
            elif message.type is aiohttp.WSMsgType.PONG:
                connection.last_pong_at = self.clock.monotonic()
                self.pongs_received += 1
            elif message.type is aiohttp.WSMsgType.BINARY:
                connection.queue.put_nowait(
                    json.dumps({"code": 3, "msg": "Invalid JSON: binary frames are not requests"})
                )

    def _over_message_rate(self, connection: StreamConnection) -> bool:
        now = time.monotonic()
        window = connection.client_messages
        window.append(now)
        while window and window[0] <= now - 1.0:
            window.popleft()
        return len(window) > self.rules.max_client_messages_per_s

    def _control(self, connection: StreamConnection, text: str) -> dict[str, Any]:
        """One JSON control request and its reply (Binance's shapes and error codes)."""
        try:
            request = json.loads(text)
        except ValueError:
            return {"code": 3, "msg": "Invalid JSON: the request is not valid JSON"}
        if not isinstance(request, dict):
            return {"code": 3, "msg": "Invalid JSON: expected an object"}
        request_id = request.get("id")
        if request_id is not None and not isinstance(request_id, int | str):
            return {"code": 3, "msg": "Invalid JSON: 'id' must be an integer, a string or null"}
        method = request.get("method")
        params = request.get("params", [])
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
                return {
                    "code": 2,
                    "msg": "Invalid request: 'params' must be a list of streams",
                    "id": request_id,
                }
            unknown = [p for p in params if p not in self.valid_streams]
            if unknown:
                return {
                    "code": 2,
                    "msg": f"Invalid request: unknown stream {unknown[0]}",
                    "id": request_id,
                }
            if method == "SUBSCRIBE":
                if len(connection.streams | set(params)) > self.rules.max_streams:
                    return {"code": 2, "msg": "Invalid request: too many streams", "id": request_id}
                connection.streams.update(params)
                self._subscriber_event.set()
            else:
                connection.streams.difference_update(params)
            return {"result": None, "id": request_id}
        if method == "LIST_SUBSCRIPTIONS":
            return {"result": sorted(connection.streams), "id": request_id}
        return {"code": 1, "msg": f"Invalid request: unknown method {method!r}", "id": request_id}

    async def _send_loop(self, connection: StreamConnection) -> None:
        ws = connection.ws
        queue = connection.queue
        try:
            while True:
                frame = await queue.get()
                if frame is None:
                    break
                if queue.qsize() < self.rules.backpressure_frames // 2:
                    connection.room.set()
                if isinstance(frame, bytes):
                    await ws.send_bytes(frame)
                    self.frames_sent += 1
                else:
                    await ws.send_str(frame)
        except (ConnectionResetError, aiohttp.ClientConnectionResetError, RuntimeError):
            self._close(connection, "send failed", abort=True)

    async def _keepalive_loop(self, connection: StreamConnection) -> None:
        """Ping on the interval; close on a missing pong or at the end of the lifetime."""
        rules = self.rules
        while True:
            now = self.clock.monotonic()
            age = now - connection.opened_at
            if age >= rules.max_lifetime_s:
                self._close(connection, "lifetime reached")
                return
            if now - connection.last_pong_at > rules.pong_timeout_s:
                self._close(connection, "pong timeout")
                return
            await self.clock.sleep(min(rules.ping_interval_s, rules.max_lifetime_s - age))
            if self.clock.monotonic() - connection.opened_at < rules.max_lifetime_s:
                with contextlib.suppress(ConnectionResetError, RuntimeError):
                    await connection.ws.ping(b"")
                    self.pings_sent += 1

    def _close(self, connection: StreamConnection, reason: str, *, abort: bool = False) -> None:
        if connection.closed_reason is not None:
            return
        connection.closed_reason = reason
        connection.room.set()  # a publisher waiting for room must not wait for a dead socket
        log.info("closing a stream connection: %s", reason)
        ws = connection.ws
        if abort and ws._req is not None and ws._req.transport is not None:
            ws._req.transport.abort()
        else:
            asyncio.get_running_loop().create_task(ws.close(code=aiohttp.WSCloseCode.GOING_AWAY))

    async def close_all(self) -> None:
        for connection in list(self.connections):
            self._close(connection, "server stopping")
