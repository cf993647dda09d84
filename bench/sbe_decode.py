"""SBE decode throughput on one core for a realistic BTCUSDT stream mix; prints JSON.

Mix: 70 % bestBidAsk, 20 % trade (one fill per event, as live BTCUSDT frames carry),
10 % diff depth of 5-40 levels split between the sides. Frames are encoded once, then
decoded ``--repeats`` times in a shuffled order; the median pass is reported.

    python bench/sbe_decode.py [--messages 200000] [--repeats 7] [--seed 7] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time

from _machine import machine
from _smoke import parse_arguments

from realtime.binance.sbe import decode, encode
from realtime.market.events import BestBidAsk, DepthDiff, Trade, TradeBatch

TARGET_MESSAGES_PER_S = 500_000
TICK_E8 = 1_000_000  # 0.01 USDT
SYMBOL = "BTCUSDT"


def realistic_frames(count: int, seed: int) -> tuple[list[bytes], list[str]]:
    """Frames of a BTCUSDT-like stream near 98,000 USDT with advancing ids and times."""
    rng = random.Random(seed)
    frames, kinds = [], []
    mid_ticks = 9_800_000
    time_us = 1_767_225_600_000_000
    trade_id, update_id = 6_000_000_000, 77_000_000_000
    for _ in range(count):
        time_us += rng.randint(50, 2_000)
        mid_ticks += rng.choice((-1, 0, 0, 0, 1))
        bid, ask = (mid_ticks - 1) * TICK_E8, mid_ticks * TICK_E8
        roll = rng.random()
        if roll < 0.7:
            update_id += rng.randint(1, 20)
            message = BestBidAsk(SYMBOL, time_us, update_id, bid, _qty(rng), ask, _qty(rng))
            kinds.append("bestBidAsk")
        elif roll < 0.9:
            trade_id += 1
            price = ask if rng.random() < 0.5 else bid
            trade = Trade(SYMBOL, trade_id, price, _qty(rng), price == bid, time_us - 300, time_us)
            message = TradeBatch(SYMBOL, time_us, time_us - 300, (trade,))
            kinds.append("trade")
        else:
            levels = rng.randint(5, 40)
            bid_levels = rng.randint(0, levels)
            first = update_id + 1
            update_id += rng.randint(levels, 3 * levels)
            bids = tuple(
                ((mid_ticks - 1 - k) * TICK_E8, _qty(rng, removal=True)) for k in range(bid_levels)
            )
            asks = tuple(
                ((mid_ticks + k) * TICK_E8, _qty(rng, removal=True))
                for k in range(levels - bid_levels)
            )
            message = DepthDiff(SYMBOL, time_us, first, update_id, bids, asks)
            kinds.append("depthDiff")
        frames.append(encode(message))
    return frames, kinds


def _qty(rng: random.Random, removal: bool = False) -> int:
    if removal and rng.random() < 0.3:
        return 0
    return max(1_000, int(rng.paretovariate(1.3) * 100_000))  # heavy-tailed, >= 0.00001 BTC


def _pass(frames: list[bytes]) -> float:
    start = time.perf_counter()
    for frame in frames:
        decode(frame)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seed", type=int, default=7)
    arguments = parse_arguments(parser, {"messages": 2_000, "repeats": 1})
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as the target says

    frames, kinds = realistic_frames(arguments.messages, arguments.seed)
    order = list(range(len(frames)))
    random.Random(arguments.seed).shuffle(order)
    shuffled = [frames[i] for i in order]
    _pass(shuffled[:20_000])  # warm caches and the symbol table

    seconds = [_pass(shuffled) for _ in range(arguments.repeats)]
    median_s = statistics.median(seconds)
    per_kind = {}
    for kind in ("bestBidAsk", "trade", "depthDiff"):
        subset = [
            frame for frame, frame_kind in zip(frames, kinds, strict=True) if frame_kind == kind
        ]
        kind_seconds = statistics.median(_pass(subset) for _ in range(arguments.repeats))
        per_kind[kind] = {
            "share": round(len(subset) / len(frames), 3),
            "median_ns_per_message": round(kind_seconds / len(subset) * 1e9),
        }
    throughput = len(frames) / median_s
    print(
        json.dumps(
            {
                "benchmark": "sbe_decode",
                "messages": len(frames),
                "mean_frame_bytes": round(sum(map(len, frames)) / len(frames), 1),
                "repeats": arguments.repeats,
                "median_messages_per_s": round(throughput),
                "min_max_messages_per_s": [
                    round(len(frames) / max(seconds)),
                    round(len(frames) / min(seconds)),
                ],
                "per_template": per_kind,
                "target_messages_per_s": TARGET_MESSAGES_PER_S,
                "meets_target": throughput >= TARGET_MESSAGES_PER_S,
                "smoke": arguments.smoke,
                "machine": machine(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
