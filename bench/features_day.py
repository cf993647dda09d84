"""A generated day through both feature paths: batch time, live throughput, parity; prints JSON.

Batch path: a day of >= 2 million trades -> per-second bars -> contract-v1 features ->
labels, timed end to end (median of ``--repeats``). Live path: the same trades, as the
decoder would hand them over (``Trade`` events), through ``BarBuilder`` and
``LiveFeatureEngine`` one event at a time on one core. Then every vector is compared by
float64 bit pattern.

    python bench/features_day.py [--trades 2150000] [--repeats 5] [--seed 7] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np
from _machine import machine
from _smoke import parse_arguments

from realtime.features.bars import BarBuilder, bars_from_tables
from realtime.features.engine import LiveFeatureEngine, batch_features
from realtime.features.labels import labels_v1
from realtime.features.replay import compare, trade_events
from realtime.market.events import Trade
from realtime.sim.synthetic_trades import synthetic_trades

BATCH_TARGET_S = 3.0
LIVE_TARGET_TRADES_PER_S = 200_000


def batch_path(trades):
    started = time.perf_counter()
    bars = bars_from_tables(trades)
    bars_done = time.perf_counter()
    features = batch_features(bars)
    features_done = time.perf_counter()
    labels = labels_v1(bars)
    done = time.perf_counter()
    timings = {
        "bars_s": bars_done - started,
        "features_s": features_done - bars_done,
        "labels_s": done - features_done,
        "total_s": done - started,
    }
    return bars, features, labels, timings


def live_path(events: list[Trade]) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    builder = BarBuilder()
    engine = LiveFeatureEngine()
    vectors = []
    for trade in events:
        vectors.extend(engine.on_bar(bar) for bar in builder.add_trade(trade))
    vectors.extend(engine.on_bar(bar) for bar in builder.close_through(builder.open_sec))
    return np.array(vectors), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=2_150_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    arguments = parse_arguments(parser, {"trades": 20_000, "repeats": 1})
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core for both paths

    trades = synthetic_trades(arguments.trades, seed=arguments.seed)
    events = list(trade_events(trades))

    runs = [batch_path(trades) for _ in range(arguments.repeats)]
    bars, features, labels, _ = runs[-1]
    batch = {key: round(statistics.median(run[3][key] for run in runs), 3) for key in runs[0][3]}

    live_runs = [live_path(events) for _ in range(max(1, arguments.repeats // 2))]
    live_vectors = live_runs[-1][0]
    live_s = statistics.median(seconds for _, seconds in live_runs)
    mismatch, mismatched = compare(features, live_vectors, bars.start_sec)

    print(
        json.dumps(
            {
                "benchmark": "features_day",
                "trades": trades.num_rows,
                "seconds": len(bars),
                "empty_seconds": int((bars.n_trades == 0).sum()),
                "features": features.shape[1],
                "labelled_seconds": int((~np.isnan(labels)).sum()),
                "batch_median": batch,
                "batch_target_s": BATCH_TARGET_S,
                "batch_meets_target": batch["total_s"] <= BATCH_TARGET_S,
                "live_median_s": round(live_s, 3),
                "live_trades_per_s": round(trades.num_rows / live_s),
                "live_target_trades_per_s": LIVE_TARGET_TRADES_PER_S,
                "live_meets_target": trades.num_rows / live_s >= LIVE_TARGET_TRADES_PER_S,
                "parity_bit_for_bit": mismatch is None,
                "mismatched_values": mismatched,
                "repeats": arguments.repeats,
                "smoke": arguments.smoke,
                "machine": machine(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
