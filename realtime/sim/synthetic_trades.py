"""A seeded synthetic day of BTCUSDT-like raw trades, generated vectorised (millions in a second).

Enough structure to exercise every feature edge: arrival rates that swing between quiet
and bursty (a log-normal intensity walk) with fully silent stretches, a price walk on the
0.01 tick, heavy-tailed (Pareto) sizes, and both taker sides. It is a test and benchmark
input, not a market model; the local exchange's generator is calibrated against real data.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from realtime.market.arrow_schemas import TRADES

TICK_E8 = 1_000_000
"""0.01 USDT."""
MIN_QTY_E8 = 1_000
"""0.00001 BTC, the BTCUSDT lot step."""


def synthetic_trades(
    n_trades: int,
    *,
    seed: int = 7,
    start_sec: int = 1_767_225_600,
    seconds: int = 86_400,
    start_price_e8: int = 98_000 * 10**8,
    first_trade_id: int = 6_000_000_000,
    silent_share: float = 0.02,
) -> pa.Table:
    """About ``n_trades`` trades over ``seconds`` seconds, as a ``TRADES`` table ordered by id.

    Deterministic for a given seed. ``silent_share`` of the seconds, in runs, have no trade.
    """
    rng = np.random.default_rng(seed)
    # Per-second intensity: a log-normal random walk, scaled to the requested mean.
    log_rate = np.cumsum(rng.normal(0.0, 0.08, seconds))
    log_rate -= np.convolve(log_rate, np.ones(600) / 600, mode="same")  # keep it mean-reverting
    rate = np.exp(log_rate)
    rate *= n_trades / rate.sum()
    silent_starts = rng.random(seconds) < silent_share / 20
    silent = np.convolve(silent_starts, np.ones(20, dtype=bool), mode="same") > 0
    rate[silent] = 0.0
    per_second = rng.poisson(rate)
    total = int(per_second.sum())

    second = np.repeat(np.arange(seconds, dtype=np.int64), per_second)
    # Whole seconds plus sub-second offsets: one sort orders time within and across seconds.
    time_us = np.sort((start_sec + second) * 1_000_000 + rng.integers(0, 1_000_000, total))

    steps = rng.choice(np.array([-1, 0, 0, 0, 1], dtype=np.int64), total)
    price_e8 = start_price_e8 + np.cumsum(steps) * TICK_E8
    qty_e8 = np.maximum(MIN_QTY_E8, (rng.pareto(1.4, total) * 200_000).astype(np.int64))
    qty_e8 -= qty_e8 % MIN_QTY_E8
    qty_e8 = np.maximum(qty_e8, MIN_QTY_E8)
    is_buyer_maker = rng.random(total) < 0.5
    return pa.table(
        {
            "trade_id": np.arange(first_trade_id, first_trade_id + total, dtype=np.int64),
            "price_e8": price_e8,
            "qty_e8": qty_e8,
            "quote_qty_e8": (price_e8 // 10**4) * (qty_e8 // 10**4),
            "transact_time": pa.array(time_us, pa.timestamp("us", tz="UTC")),
            "is_buyer_maker": is_buyer_maker,
            "is_best_match": np.ones(total, dtype=bool),
        },
        schema=TRADES,
    )
