"""SBE frames per second the local exchange sustains to one client on loopback; prints JSON.

The exchange plays at unlimited speed; one client, in its own process (as a real consumer
would be), subscribes to trade, bestBidAsk and depth on one combined-stream connection and
counts binary frames for ``--seconds``. Two sources, side by side in one run:

- ``recorded``: the generator's market produced before the clock starts, then served: the
  server's own capacity (framing, fan-out, socket writes);
- ``generated``: the generator running live inside the server, as ``btc-sim serve`` does.

    python bench/sim_stream.py [--seconds 5] [--repeats 3] [--seed 7] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence

from _machine import machine
from _smoke import parse_arguments

from realtime.market.events import DepthSnapshot
from realtime.sim.exchange import ExchangeConfig, LocalExchange
from realtime.sim.market_model import MarketModel, MarketParams
from realtime.sim.source import SourceEvent

TARGET_FRAMES_PER_S = 50_000

_CLIENT = """
import asyncio, json, sys, time
import aiohttp

async def main(url, seconds):
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url, headers={"X-MBX-APIKEY": "bench"}, max_msg_size=0) as ws:
            frames = 0
            first = await ws.receive()
            start = last = time.perf_counter()
            while time.perf_counter() - start < seconds:
                try:
                    message = await ws.receive(timeout=2.0)
                except asyncio.TimeoutError:
                    break  # the market ran out: measure what came

                if message.type is aiohttp.WSMsgType.BINARY:
                    frames += 1
                    last = time.perf_counter()
                elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                    break
            elapsed = last - start
    print(json.dumps({"frames": frames, "seconds": elapsed}))

asyncio.run(main(sys.argv[1], float(sys.argv[2])))
"""


class PregeneratedMarket:
    """A market source over events produced beforehand."""

    def __init__(
        self, symbol: str, first_agg_trade_id: int, book: DepthSnapshot, events: list
    ) -> None:
        self.symbol = symbol
        self.first_agg_trade_id = first_agg_trade_id
        self._book = book
        self.events = events
        self._events: list[SourceEvent] | None = events

    def initial_book(self) -> DepthSnapshot:
        return self._book

    def next_events(self) -> Sequence[SourceEvent] | None:
        events, self._events = self._events, None
        return events


def recorded(seed: int, market_seconds: int) -> PregeneratedMarket:
    model = MarketModel(MarketParams(seed=seed))
    book = model.initial_book()
    events: list[SourceEvent] = []
    for _ in range(market_seconds):
        events.extend(model.next_events() or ())
    return PregeneratedMarket(model.symbol, model.first_agg_trade_id, book, events)


async def measure(source, seconds: float) -> dict:
    config = ExchangeConfig(speed=math.inf, weight_limit=None)
    async with LocalExchange(source, config) as exchange:
        streams = "/".join(exchange.stream(kind) for kind in ("trade", "bestBidAsk", "depth"))
        url = f"{exchange.stream_url}/stream?streams={streams}"
        client = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _CLIENT, url, str(seconds), stdout=subprocess.PIPE
        )
        output, _ = await client.communicate()
    result = json.loads(output)
    result["frames_per_s"] = result["frames"] / result["seconds"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    arguments = parse_arguments(parser, {"seconds": 0.5, "repeats": 1})

    # Enough recorded market (~36 frames a market second) that the client never runs out.
    prepared_at = time.perf_counter()
    market = recorded(arguments.seed, int(arguments.seconds * 3000))
    runs: dict[str, list[float]] = {"recorded": [], "generated": []}
    for _ in range(arguments.repeats):
        source = PregeneratedMarket(
            market.symbol, market.first_agg_trade_id, market.initial_book(), list(market.events)
        )
        runs["recorded"].append(asyncio.run(measure(source, arguments.seconds))["frames_per_s"])
        model = MarketModel(MarketParams(seed=arguments.seed))
        runs["generated"].append(asyncio.run(measure(model, arguments.seconds))["frames_per_s"])
    medians = {name: statistics.median(values) for name, values in runs.items()}
    print(
        json.dumps(
            {
                "benchmark": "sim_stream",
                "seconds_per_run": arguments.seconds,
                "repeats": arguments.repeats,
                "frames_per_s_median": {k: round(v) for k, v in medians.items()},
                "frames_per_s_runs": {k: [round(v) for v in vs] for k, vs in runs.items()},
                "target_frames_per_s": TARGET_FRAMES_PER_S,
                "meets_target": medians["recorded"] >= TARGET_FRAMES_PER_S,
                "wall_s": round(time.perf_counter() - prepared_at, 1),
                "smoke": arguments.smoke,
                "machine": machine(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
