"""One SBE combined-stream WebSocket and the task that reads it.

The ``websockets`` client answers the server's pings itself, from the protocol callback that
receives data, so pongs go out as long as the event loop is free. The reader hands every
frame to a synchronous callback that only decodes and buffers (microseconds); the library's
receive queue is bounded (``MAX_QUEUED_FRAMES``), so the reader gives the loop back at least
that often even when frames pile up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosedError

from realtime.ingest.dedup import STREAMS

log = logging.getLogger(__name__)

API_KEY_HEADER = "X-MBX-APIKEY"
OPEN_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 2.0
PING_INTERVAL_S = 20.0
"""Our own keep-alive pings: they find a half-open socket; one per 20 s is far below
Binance's 5 client messages a second."""
MAX_QUEUED_FRAMES = 256
"""Frames received but not yet read before the socket stops reading (one burst of depth)."""
MAX_FRAME_BYTES = 1 << 20

FrameCallback = Callable[["StreamConnection", bytes | str], None]
EndCallback = Callable[["StreamConnection"], None]


class _QuietHandshakeLog(logging.LoggerAdapter):
    """The ``websockets`` logger without its debug lines.

    At debug level the library logs every handshake header, the API key included, and every
    frame; neither belongs in our logs. Its info and warnings still get through.
    """

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 (logging's name)
        return level > logging.DEBUG and self.logger.isEnabledFor(level)


_WEBSOCKETS_LOG = _QuietHandshakeLog(logging.getLogger("websockets.client"), {})


def stream_names(symbol: str) -> tuple[str, ...]:
    """The four SBE streams of ``symbol`` (lower case, as Binance names them)."""
    return tuple(f"{symbol.lower()}@{kind}" for kind in STREAMS)


def combined_stream_url(base_url: str, symbol: str) -> str:
    """``<base>/stream?streams=a/b/c/d``: every stream of the symbol on one connection."""
    return f"{base_url.rstrip('/')}/stream?streams={'/'.join(stream_names(symbol))}"


async def open_socket(url: str, api_key: str | None) -> ClientConnection:
    """Open the WebSocket; raises ``OSError``, ``TimeoutError`` or a ``WebSocketException``."""
    headers = {API_KEY_HEADER: api_key} if api_key else None
    return await connect(
        url,
        additional_headers=headers,
        open_timeout=OPEN_TIMEOUT_S,
        close_timeout=CLOSE_TIMEOUT_S,
        ping_interval=PING_INTERVAL_S,
        ping_timeout=PING_INTERVAL_S,
        max_queue=MAX_QUEUED_FRAMES,
        max_size=MAX_FRAME_BYTES,
        # Frames are ~100 bytes of binary: deflate would cost CPU on each for little gain.
        compression=None,
        logger=_WEBSOCKETS_LOG,
    )


class StreamConnection:
    """An open connection of the role: its socket, its reader task, and why it ended."""

    def __init__(
        self,
        number: int,
        socket: ClientConnection,
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

    @property
    def ended(self) -> bool:
        return self.end_reason is not None

    def start(self) -> None:
        """Start reading; frames go to ``on_frame`` in order, then ``on_end`` once."""
        self._reader = asyncio.create_task(self._read(), name=f"ingest-connection-{self.number}")

    async def close(self) -> None:
        """Close the socket (a clean close) and wait for the reader to finish."""
        await self.socket.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def _read(self) -> None:
        reason = "closed"
        try:
            async for frame in self.socket:
                self._on_frame(self, frame)
        except ConnectionClosedError as error:
            reason = "error"
            log.info(
                "stream connection dropped",
                extra={"connection": self.number, "close_code": _close_code(error)},
            )
        except Exception:
            # A bug on our side (decoding is guarded): drop this socket, the role reconnects.
            reason = "error"
            log.exception("stream reader failed", extra={"connection": self.number})
            await self.socket.close()
        finally:
            self.end_reason = reason
            self._on_end(self)


def _close_code(error: ConnectionClosedError) -> int | None:
    received = error.rcvd
    return received.code if received is not None else None
