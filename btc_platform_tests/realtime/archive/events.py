"""Synthetic market events and predictions for the capture tests (deterministic)."""

from __future__ import annotations

from realtime.inference.prediction import Prediction
from realtime.market.events import BestBidAsk, DepthDiff, DepthSnapshot, Trade

SYMBOL = "BTCUSDT"
DAY_START_US = 1_767_225_600_000_000
"""2026-01-01T00:00Z."""
US_PER_S = 1_000_000


def trades(first_id: int, count: int, start_us: int, step_us: int = 100_000) -> list[Trade]:
    """``count`` trades with consecutive ids from ``first_id``, ``step_us`` apart."""
    return [
        Trade(
            SYMBOL,
            first_id + i,
            price_e8=9_000_000_000_000 + 1_000_000 * (i % 7),
            qty_e8=100_000 * (1 + i % 5),
            is_buyer_maker=i % 3 == 0,
            transact_time_us=start_us + i * step_us,
            event_time_us=start_us + i * step_us + 250,
            is_best_match=True,
        )
        for i in range(count)
    ]


def quotes(first_id: int, count: int, start_us: int, step_us: int = 100_000) -> list[BestBidAsk]:
    return [
        BestBidAsk(
            SYMBOL,
            start_us + i * step_us,
            first_id + 3 * i,
            bid_price_e8=9_000_000_000_000 - 1_000_000,
            bid_qty_e8=200_000 + i,
            ask_price_e8=9_000_000_000_000 + 1_000_000,
            ask_qty_e8=300_000 + i,
        )
        for i in range(count)
    ]


def depth(first_id: int, count: int, start_us: int, step_us: int = 100_000) -> list:
    """Diffs with a depth20-style snapshot every fifth event."""
    events: list[DepthDiff | DepthSnapshot] = []
    update_id = first_id
    for i in range(count):
        time_us = start_us + i * step_us
        bids = tuple((9_000_000_000_000 - k * 1_000_000, 100_000 * (k + i)) for k in range(i % 3))
        asks = ((9_000_000_000_000 + 1_000_000, 50_000 * (i + 1)),)
        if i % 5 == 4:
            events.append(DepthSnapshot(SYMBOL, time_us, update_id, bids, asks))
        else:
            events.append(DepthDiff(SYMBOL, time_us, update_id + 1, update_id + 4, bids, asks))
            update_id += 4
    return events


def predictions(count: int, start_sec: int, *, model: str = "m1") -> list[Prediction]:
    return [
        Prediction(
            SYMBOL,
            ts_sec=start_sec + i,
            yhat_log_return_10s=None if i % 4 == 3 else (i - 2) * 1e-5,
            latency_ms=1.5 + i,
            model_version=model,
            fallback_level=5 if i % 4 == 3 else 1,
            feature_age_ms=400 + i,
            reason="safe mode" if i % 4 == 3 else "fresh",
            tick_time_us=(start_sec + i + 1) * US_PER_S + 300_000,
        )
        for i in range(count)
    ]
