"""A minimal SBE stream client for tests: connect to the local exchange, decode frames."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import aiohttp

from realtime.binance.sbe import decode
from realtime.market.events import BestBidAsk, DepthDiff, DepthSnapshot, TradeBatch

API_KEY = "local-test-key"

Message = TradeBatch | BestBidAsk | DepthDiff | DepthSnapshot


@contextlib.asynccontextmanager
async def stream_socket(
    stream_url: str, streams: list[str], **kwargs: object
) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    """A combined-stream connection (``/stream?streams=a/b``) with an API key."""
    url = f"{stream_url}/stream?streams={'/'.join(streams)}"
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url, headers={"X-MBX-APIKEY": API_KEY}, **kwargs) as ws,  # type: ignore[arg-type]
    ):
        yield ws


async def read_messages(
    ws: aiohttp.ClientWebSocketResponse,
    until: Callable[[list[Message]], bool],
    *,
    timeout_s: float = 30.0,
) -> list[Message]:
    """Decode binary frames until ``until(messages)`` holds; text frames are skipped."""
    messages: list[Message] = []

    async def read() -> None:
        async for frame in ws:
            if frame.type is aiohttp.WSMsgType.BINARY:
                messages.append(decode(frame.data))
                if until(messages):
                    return
        raise AssertionError(f"the stream closed after {len(messages)} messages")

    await asyncio.wait_for(read(), timeout_s)
    return messages


def trades_of(messages: list[Message]) -> list:
    """Every trade in the messages, in arrival order."""
    return [trade for m in messages if isinstance(m, TradeBatch) for trade in m.trades]


async def post_fault(admin_url: str, fault: dict) -> None:
    """Apply one fault through the exchange's admin endpoint; fail the test if refused."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{admin_url}/faults", json=fault) as response,
    ):
        assert response.status == 200, await response.text()
