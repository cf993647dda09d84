"""The realtime service's throughput and tick latency on loopback; prints JSON.

1. ``ingest → bus → features``: the local exchange, in its own process, serves a market
   recorded beforehand at unlimited speed over the SBE WebSocket (trade, bestBidAsk, depth,
   depth20); the service's ingest and features roles run together in this process, as
   ``btc-realtime run`` runs them, against a private ``redis-server``. Measured: market
   events per second that the features role applied (decoded, de-duplicated, written to the
   bus in blocks, read back, book and bars and features updated, hot state written),
   sustained over ``--seconds`` after a warm-up; and the service process's CPU time per
   event, hence what one core of it can carry. On a 2-core machine the exchange (generating
   and encoding the market) and redis-server share the cores with the service, so the
   achieved rate is the machine's, and the per-event cost is the service's.
2. Tick latency: the infer role's tick (one Redis pipeline read, the fallback controller,
   onnxruntime, ``XADD pred``, the capture segment), back to back, with fresh features
   written between ticks. Medians and percentiles over ``--ticks`` ticks.

    python bench/service_pipeline.py [--seconds 10] [--repeats 3] [--ticks 2000] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import redis.asyncio as aioredis
from _machine import machine
from _smoke import parse_arguments

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

from btc_platform_tests.realtime.service.e2e import promoted_model  # noqa: E402
from btc_platform_tests.support.redis_server import RedisServer, free_port  # noqa: E402
from realtime.features.contract import CONTRACT_V1  # noqa: E402
from realtime.service.features_role import FeaturesRole  # noqa: E402
from realtime.service.infer_role import InferRole  # noqa: E402
from realtime.service.metrics import Metrics  # noqa: E402
from realtime.service.runner import Service  # noqa: E402
from realtime.service.settings import RealtimeSettings  # noqa: E402
from realtime.state.hot_state import FeatureFlags  # noqa: E402
from realtime.state.keys import Keys  # noqa: E402
from realtime.state.writer import ClosedSecond, HotState, HotStateWriter  # noqa: E402

TARGET_EVENTS_PER_S = 25_000
TARGET_TICK_P50_MS = 1.0
TARGET_TICK_P99_MS = 5.0
MARKET_AHEAD_OF_WALL_MS = 30 * 86_400_000
"""More market time than any run plays (~900 market seconds a wall second)."""
FIRST_EVENTS_TIMEOUT_S = 300.0
"""Connecting and the first book snapshot: seconds, or minutes on a machine busy elsewhere."""

_EXCHANGE = """
import asyncio, math, sys
sys.path.insert(0, {bench!r})
from sim_stream import recorded
from realtime.sim.exchange import ExchangeConfig, LocalExchange

async def main(port, market_seconds):
    market = recorded(7, market_seconds)
    config = ExchangeConfig(port=port, speed=math.inf, weight_limit=None)
    async with LocalExchange(market, config):
        print("ready", flush=True)
        await asyncio.Event().wait()

asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
"""


async def throughput(redis_url: str, seconds: float, warm_up_s: float, data_dir: Path) -> dict:
    port = free_port()
    # ~39 frames a market second at ~35k frames/s served, ~900 market seconds a second: with
    # margin, enough market for the warm-up and the whole run.
    market_seconds = int((warm_up_s + seconds) * 2300)
    exchange = subprocess.Popen(
        [sys.executable, "-c", _EXCHANGE.format(bench=str(BENCH)), str(port), str(market_seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert exchange.stdout is not None
        line = await asyncio.to_thread(exchange.stdout.readline)
        assert line.strip() == "ready", line
        settings = RealtimeSettings(
            binance_rest_url=f"http://127.0.0.1:{port}",
            binance_stream_url=f"ws://127.0.0.1:{port}",
            binance_api_key="bench",
            redis_url=redis_url,
            data_dir=data_dir,
            metrics_port=0,
            # The market plays at unlimited speed, hours of market time a wall second: far
            # ahead of the wall clock on purpose, which the live policy would doubt.
            max_clock_skew_ms=MARKET_AHEAD_OF_WALL_MS,
        )
        service = Service(settings, roles=("ingest", "features"))
        stop = asyncio.Event()
        task = asyncio.create_task(service.run(stop))
        features = await first_events_applied(service, task)  # connected, book synced
        await asyncio.sleep(warm_up_s)
        start_events, start = features.events_applied, time.perf_counter()
        start_cpu = time.process_time()
        start_seconds = features.seconds_published
        await asyncio.sleep(seconds)
        events, elapsed = features.events_applied - start_events, time.perf_counter() - start
        cpu = time.process_time() - start_cpu
        published = features.seconds_published - start_seconds
        received = sum(
            service.metrics.registry.get_sample_value("btc_events_total", {"stream": s}) or 0
            for s in ("trade", "bestBidAsk", "depth", "depth20")
        )
        stop.set()
        await task
        return {
            "events_per_s": events / elapsed,
            # This process (ingest and features) only: the exchange and Redis run elsewhere.
            "service_cpu_share": cpu / elapsed,
            "service_cpu_us_per_event": cpu / events * 1e6 if events else None,
            "one_core_capacity_events_per_s": events / cpu if cpu else None,
            "market_seconds_published_per_s": published / elapsed,
            "events_received_total": received,
            "bus_pending_at_end": service.bus.pending_events if service.bus else None,
            "late_events": features.metrics.registry.get_sample_value("btc_late_events_total"),
        }
    finally:
        exchange.terminate()
        exchange.wait(timeout=10)


async def first_events_applied(
    service: Service, task: asyncio.Task, timeout_s: float = FIRST_EVENTS_TIMEOUT_S
) -> FeaturesRole:
    """The features role once it applied its first market events (raises if the service
    ended or ``timeout_s`` passed first)."""
    deadline = time.monotonic() + timeout_s
    while service.features is None or service.features.events_applied == 0:
        if task.done():
            task.result()
            raise RuntimeError("the service ended before applying any market event")
        if time.monotonic() > deadline:
            raise RuntimeError(f"no market event applied within {timeout_s:.0f} s")
        await asyncio.sleep(0.1)
    return service.features


async def tick_latency(redis_url: str, ticks: int, tmp: Path) -> dict:
    world, version = promoted_model(tmp)
    settings = RealtimeSettings(
        redis_url=redis_url, data_dir=tmp / "data", model_store=str(world.root)
    )
    client = aioredis.Redis.from_url(redis_url)
    keys = Keys(settings.symbol)
    writer = HotStateWriter(client, keys)
    infer = InferRole(settings, client, Metrics())
    await asyncio.to_thread(infer.model.refresh)
    assert infer.model.version == version
    rng = np.random.default_rng(1)
    latencies, levels = [], []
    for _ in range(ticks):
        now_us = time.time_ns() // 1000
        ts = now_us // 1_000_000 - 1
        vector = rng.normal(size=len(CONTRACT_V1.names)).tolist()
        second = ClosedSecond(ts, vector, FeatureFlags(True, True))
        await writer.write(HotState([second], [], None, False, now_us, now_us))
        prediction = await infer.tick()
        assert prediction is not None
        latencies.append(prediction.latency_ms)
        levels.append(prediction.fallback_level)
    await client.aclose()
    p50, p99 = np.percentile(latencies, [50, 99])
    return {
        "ticks": ticks,
        "p50_ms": float(p50),
        "p99_ms": float(p99),
        "max_ms": float(max(latencies)),
        "level_1_share": levels.count(1) / len(levels),
        "skipped": infer.skipped,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ticks", type=int, default=2000)
    parser.add_argument("--warm-up", type=float, default=3.0, help="seconds before measuring")
    arguments = parse_arguments(parser, {"seconds": 1.0, "repeats": 1, "ticks": 20, "warm_up": 1.0})
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as directory:
        tmp = Path(directory)
        with RedisServer(tmp / "redis") as server:
            runs = [
                asyncio.run(
                    throughput(server.url, arguments.seconds, arguments.warm_up, tmp / f"data-{i}")
                )
                for i in range(arguments.repeats)
            ]
            ticks = asyncio.run(tick_latency(server.url, arguments.ticks, tmp))
    rates = [run["events_per_s"] for run in runs]
    median = statistics.median(rates)
    capacity = statistics.median(run["one_core_capacity_events_per_s"] for run in runs)
    print(
        json.dumps(
            {
                "benchmark": "service_pipeline",
                "ingest_bus_features": {
                    "seconds_per_run": arguments.seconds,
                    "events_per_s_median": round(median),
                    "events_per_s_runs": [round(rate) for rate in rates],
                    "one_core_capacity_events_per_s_median": round(capacity),
                    "runs": runs,
                    "target_events_per_s": TARGET_EVENTS_PER_S,
                    "meets_target": median >= TARGET_EVENTS_PER_S,
                },
                "tick_latency": ticks
                | {
                    "target_p50_ms": TARGET_TICK_P50_MS,
                    "target_p99_ms": TARGET_TICK_P99_MS,
                    "meets_target": ticks["p50_ms"] <= TARGET_TICK_P50_MS
                    and ticks["p99_ms"] <= TARGET_TICK_P99_MS,
                },
                "wall_s": round(time.perf_counter() - started, 1),
                "smoke": arguments.smoke,
                "machine": machine(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
