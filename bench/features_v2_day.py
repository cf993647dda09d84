"""Contract v2 over a generated market: batch time, live throughput, parity; prints JSON.

The market is the local exchange's generator (``MarketModel``): trades, best bid/asks and
100 ms depth diffs from a full initial book, as the live service would record them. Batch
path: tables -> bars (vectorised), book events -> book bars (the book replayed), then
``batch_features_v2`` and ``labels_v2``. Live path: every event through ``LiveFeaturesV2``
one at a time, on one core. Then every vector is compared by float64 bit pattern.

    python bench/features_v2_day.py [--hours 24] [--seed 7] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
from _machine import machine
from _smoke import parse_arguments

from realtime.features.bars import bars_from_tables
from realtime.features.book_bars import book_bars_from_events
from realtime.features.engine_v2 import FEATURES_V2, batch_features_v2
from realtime.features.labels import labels_v2
from realtime.features.replay import compare
from realtime.features.replay_v2 import live_path, recorded_market
from realtime.sim.market_model import MarketModel, MarketParams


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--seed", type=int, default=7)
    arguments = parse_arguments(parser, {"hours": 0.05})
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    started = time.perf_counter()
    model = MarketModel(MarketParams(seed=arguments.seed))
    initial_book = model.initial_book()
    seconds = int(arguments.hours * 3600)
    events = [event for _ in range(seconds) for event in model.next_events()]
    market = recorded_market(model.symbol, events, initial_book)
    generated_s = time.perf_counter() - started

    started = time.perf_counter()
    bars = bars_from_tables(market.trades, market.quotes, end_sec=market.end_sec)
    bars_done = time.perf_counter()
    book_bars = book_bars_from_events(
        market.book_events, symbol=market.symbol, start_sec=bars.start_sec, end_sec=market.end_sec
    )
    book_done = time.perf_counter()
    batch = batch_features_v2(bars, book_bars)
    features_done = time.perf_counter()
    labels = labels_v2(bars)
    batch_done = time.perf_counter()

    live_started = time.perf_counter()
    _, live = live_path(market)
    live_s = time.perf_counter() - live_started
    first, mismatched = compare(batch, live, bars.start_sec, FEATURES_V2)

    print(
        json.dumps(
            {
                "benchmark": "features_v2_day",
                "market_hours": arguments.hours,
                "trades": market.trades.num_rows,
                "best_bid_asks": market.quotes.num_rows,
                "book_events": len(market.book_events),
                "events": len(market.events),
                "seconds": len(bars),
                "generate_s": round(generated_s, 1),
                "batch": {
                    "bars_s": round(bars_done - started, 3),
                    "book_bars_s": round(book_done - bars_done, 3),
                    "features_s": round(features_done - book_done, 3),
                    "labels_s": round(batch_done - features_done, 3),
                    "total_s": round(batch_done - started, 3),
                },
                "live_s": round(live_s, 2),
                "live_events_per_s": round(len(market.events) / live_s),
                "valid_book_seconds": int(book_bars.valid.sum()),
                "labelled_seconds": int((~np.isnan(labels)).sum()),
                "values_compared": int(batch.size),
                "mismatched_values": mismatched,
                "first_mismatch": None if first is None else vars(first),
                "smoke": arguments.smoke,
                "machine": machine(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
