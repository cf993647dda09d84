"""The local exchange on its own thread and event loop, for synchronous callers.

Dagster runs assets synchronously and the assets start their own event loops
(``asyncio.run``), so tests of the lakehouse cannot share a loop with the exchange. This
runs it beside them; faults go through its admin endpoint, as an operator's would.
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from realtime.sim.exchange import ExchangeConfig, LocalExchange
from realtime.sim.source import MarketSource


@dataclass(frozen=True)
class ServedExchange:
    """A running exchange as seen from outside: its URL and its admin endpoint."""

    url: str
    exchange: LocalExchange

    def post_fault(self, fault: dict) -> None:
        request = urllib.request.Request(
            f"{self.url}/admin/faults",
            data=json.dumps(fault).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200, response.read()

    def clear_faults(self) -> None:
        request = urllib.request.Request(f"{self.url}/admin/faults", method="DELETE")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200, response.read()


@contextmanager
def serve_in_thread(source: MarketSource, config: ExchangeConfig) -> Iterator[ServedExchange]:
    """Start the exchange on a daemon thread; stop it and join the thread on exit."""
    ready = threading.Event()
    holder: dict[str, object] = {}

    async def run() -> None:
        stop = asyncio.Event()
        holder["loop"], holder["stop"] = asyncio.get_running_loop(), stop
        try:
            async with LocalExchange(source, config) as exchange:
                holder["served"] = ServedExchange(exchange.rest_url, exchange)
                ready.set()
                await stop.wait()
        finally:
            ready.set()

    def main() -> None:
        try:
            asyncio.run(run())
        except BaseException as error:  # surfaced to the test below
            holder["error"] = error

    thread = threading.Thread(target=main, name="local-exchange", daemon=True)
    thread.start()
    ready.wait(timeout=900)  # generating a long history takes minutes
    if "served" not in holder:
        raise RuntimeError(f"the local exchange did not start: {holder.get('error')!r}")
    try:
        yield holder["served"]  # type: ignore[misc]
    finally:
        loop, stop = holder["loop"], holder["stop"]
        loop.call_soon_threadsafe(stop.set)  # type: ignore[attr-defined]
        thread.join(timeout=30)
