"""One SBE combined-stream WebSocket and the task that reads it.

The socket is ``aiohttp``'s WebSocket client: its frame reader is C, a few µs a frame
cheaper than ``websockets`` at the rates the role sees. The reader answers the server's
pings itself (``autoping``) as it reads, and sends our keep-alive pings (``heartbeat``).
It hands every frame to a synchronous callback that only decodes and buffers
(microseconds); aiohttp stops reading the socket once about ``2 * 64 KiB`` of frames are
queued, so a burst never piles up unread in memory.

Each socket has its own ``ClientSession`` (connections are opened a few times a day), closed
with the socket: the two travel together as a ``StreamSocket``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import aiohttp

from realtime.ingest.dedup import STREAMS

log = logging.getLogger(__name__)

API_KEY_HEADER = "X-MBX-APIKEY"
OPEN_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 2.0
PING_INTERVAL_S = 20.0
"""Our own keep-alive pings: they find a half-open socket; one per 20 s is far below
Binance's 5 client messages a second. (aiohttp pings after this long without a frame and
drops the socket when the pong has not come within half of it.)"""
MAX_FRAME_BYTES = 1 << 20
FRAMES_PER_TURN = 256
"""Frames read before the reader gives the event loop back. aiohttp's receive queue is
bounded in bytes (about 128 KiB: a thousand and more small frames), and ``receive`` does
not yield while frames are queued: without this, a burst starves the other roles of the
process (the bus writer, the features role) for tens of milliseconds at a time."""
CLEAN_CLOSE_CODES = frozenset({aiohttp.WSCloseCode.OK, aiohttp.WSCloseCode.GOING_AWAY})
"""Close codes of a normal end (done, going away); any other code is an error."""

FrameCallback = Callable[["StreamConnection", bytes | str], None]
EndCallback = Callable[["StreamConnection"], None]

_BINARY = aiohttp.WSMsgType.BINARY
_TEXT = aiohttp.WSMsgType.TEXT
_CLOSE = aiohttp.WSMsgType.CLOSE
_ERROR = aiohttp.WSMsgType.ERROR


def stream_names(symbol: str) -> tuple[str, ...]:
    """The four SBE streams of ``symbol`` (lower case, as Binance names them)."""
    return tuple(f"{symbol.lower()}@{kind}" for kind in STREAMS)


def combined_stream_url(base_url: str, symbol: str) -> str:
    """``<base>/stream?streams=a/b/c/d``: every stream of the symbol on one connection."""
    return f"{base_url.rstrip('/')}/stream?streams={'/'.join(stream_names(symbol))}"


class StreamSocket:
    """An open WebSocket and the client session that owns its TCP connection."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse):
        self.session = session
        self.ws = ws

    async def close(self) -> None:
        """Close the WebSocket (the closing handshake), then the session; idempotent."""
        try:
            await self.ws.close()
        finally:
            await self.session.close()


async def open_socket(url: str, api_key: str | None) -> StreamSocket:
    """Open the WebSocket; raises ``OSError``, ``TimeoutError`` or an ``aiohttp.ClientError``.

    A refused handshake is an ``aiohttp.WSServerHandshakeError`` carrying the HTTP status.
    """
    headers = {API_KEY_HEADER: api_key} if api_key else None
    # No session-wide timeout: it would keep running over the socket's lifetime; the
    # handshake is bounded here, and reads wait as long as the stream lasts.
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
    try:
        async with asyncio.timeout(OPEN_TIMEOUT_S):
            ws = await session.ws_connect(
                url,
                headers=headers,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=CLOSE_TIMEOUT_S),
                autoping=True,
                heartbeat=PING_INTERVAL_S,
                max_msg_size=MAX_FRAME_BYTES,
                # Frames are ~100 bytes of binary: deflate would cost CPU on each for little gain.
                compress=0,
            )
    except BaseException:
        await session.close()
        raise
    return StreamSocket(session, ws)


class StreamConnection:
    """An open connection of the role: its socket, its reader task, and why it ended."""

    def __init__(
        self,
        number: int,
        socket: StreamSocket,
        opened_s: float,
        *,
        on_frame: FrameCallback,
        on_end: EndCallback,
    ) -> None:
        self.number = number
        """Counts the role's connections from 1; names this one in logs."""
        self.socket = socket
        self.opened_s = opened_s
        """Monotonic seconds when it opened."""
        self.last_trade_s = opened_s
        """Monotonic seconds of its last trade frame (or of its opening / taking over)."""
        self.shutdown_notified = False
        self.end_reason: str | None = None
        """``closed`` (a clean close) or ``error`` once the socket is gone; ``None`` before."""
        self._on_frame = on_frame
        self._on_end = on_end
        self._reader: asyncio.Task[None] | None = None
        self._closing = False
        """Whether we close it (``close``): its end is then clean, whatever the socket says."""

    @property
    def ended(self) -> bool:
        return self.end_reason is not None

    def start(self) -> None:
        """Start reading; frames go to ``on_frame`` in order, then ``on_end`` once."""
        self._reader = asyncio.create_task(self._read(), name=f"ingest-connection-{self.number}")

    async def close(self) -> None:
        """Close the socket (a clean close) and wait for the reader to finish."""
        self._closing = True
        await self.socket.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def _read(self) -> None:
        # The per-frame path: one ``receive`` and one callback; everything else ends the loop.
        ws = self.socket.ws
        on_frame = self._on_frame
        reason = "error"
        turn = FRAMES_PER_TURN
        try:
            while True:
                kind, data, _ = await ws.receive()
                if kind is _BINARY or kind is _TEXT:
                    on_frame(self, data)
                    turn -= 1
                    if not turn:
                        turn = FRAMES_PER_TURN
                        await asyncio.sleep(0)
                else:
                    reason = self._ended_by(kind, data)
                    break
        except Exception:
            # A bug on our side (decoding is guarded): drop this socket, the role reconnects.
            log.exception("stream reader failed", extra={"connection": self.number})
        finally:
            self.end_reason = reason
            try:
                if not self._closing:  # ``close`` closes it, and waits for the handshake
                    await self.socket.close()
            finally:
                self._on_end(self)

    def _ended_by(self, kind: aiohttp.WSMsgType, data: object) -> str:
        """``closed`` or ``error`` for the message that ended the stream; logs the cause."""
        if self._closing:
            return "closed"  # our own close: the reader sees CLOSING or CLOSED
        ws = self.socket.ws
        if kind is _CLOSE:
            # The server's close frame (already answered: ``autoclose``); ``data`` is its code.
            code = data if isinstance(data, int) else ws.close_code
            clean = code in CLEAN_CLOSE_CODES
            log.info(
                "stream connection closed by the server" if clean else "stream connection dropped",
                extra={"connection": self.number, "close_code": code},
            )
            return "closed" if clean else "error"
        # No close frame: the socket was lost (CLOSED), or a protocol error, an oversized
        # frame or a missing pong ended it (ERROR with the exception, or CLOSED after it).
        error = data if kind is _ERROR else ws.exception()
        extra: dict[str, object] = {"connection": self.number, "close_code": ws.close_code}
        if error is not None:
            extra["error"] = f"{type(error).__name__}: {error}"
        log.info("stream connection dropped", extra=extra)
        return "error"
