"""The arithmetic the batch and live paths share, written once for numpy arrays and scalars.

Parity is by construction, not by tolerance. Every float here comes from a correctly
rounded step on identical operands, and such a step gives the same bits whether numpy or
CPython performs it:

- a ratio of exact integers below 2**53 (numpy converts both exactly, then divides once;
  CPython divides such ints the same way; beyond 2**53 only CPython ints are used);
- IEEE +, -, *, / and sqrt, in the order written here;
- ``math.log`` on a Python float, which both paths call per value.

Float reductions are written as left-to-right sums: ``numpy.sum`` adds pairwise in blocks,
which can round differently.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TypeVar

E8 = 10**8
EXACT_FLOAT_LIMIT = 2**53
"""Integers converted to float must stay below this, where float64 holds them exactly."""

Number = TypeVar("Number")


def to_units(value_e8: Number) -> Number:
    """An e8 quantity or price difference in units (BTC, USDT)."""
    return value_e8 / E8


def imbalance(buy_e8: Number, sell_e8: Number) -> Number:
    """``(buy - sell) / (buy + sell)``; the caller guarantees ``buy + sell > 0``."""
    return (buy_e8 - sell_e8) / (buy_e8 + sell_e8)


def mean_trade_size(volume_e8: Number, n_trades: Number) -> Number:
    """Mean quantity per trade in units; the caller guarantees ``n_trades > 0``."""
    return volume_e8 / (n_trades * E8)


def vwap_deviation(last_price_e8: int, volume_e8: int, notional_e16: int) -> float:
    """``(P - VWAP) / VWAP`` exactly, rounded once: ``(L * V - N) / N`` on Python ints."""
    return (last_price_e8 * volume_e8 - notional_e16) / notional_e16


def log_price(price_e8: int) -> float:
    """``log(price)`` of an e8 price; the one transcendental step, always ``math.log``."""
    return math.log(price_e8 / E8)


def population_std(values: Sequence[Number], sqrt: Callable[[Number], Number]) -> Number:
    """Population standard deviation of ``values`` (oldest first), summed left to right.

    ``sqrt`` is ``math.sqrt`` for scalars, ``numpy.sqrt`` for arrays: both are the correctly
    rounded IEEE square root (``x ** 0.5`` is not: numpy and libm's pow differ).
    """
    count = len(values)
    total = values[0]
    for value in values[1:]:
        total = total + value
    mean = total / count
    first = values[0] - mean
    squares = first * first
    for value in values[1:]:
        deviation = value - mean
        squares = squares + deviation * deviation
    return sqrt(squares / count)


MEDIAN_WINDOW = 60
MEDIAN_LOW, MEDIAN_HIGH = 29, 30
"""0-based ranks of the two middle values of 60; the median is their mean."""
P95_WINDOW = 60
P95_RANK = math.ceil(0.95 * P95_WINDOW) - 1
"""Nearest-rank 95th percentile of 60 values: the 57th smallest (0-based rank 56)."""


def log_mid(bid_e8: int, ask_e8: int) -> float:
    """``log(M)`` with ``M = (bid + ask) / 2`` in units: one exact ratio, then ``math.log``."""
    return math.log((bid_e8 + ask_e8) / (2 * E8))


def spread_bp(bid_e8: Number, ask_e8: Number) -> Number:
    """``1e4 * (ask - bid) / M`` as the one ratio ``(ask - bid) * 20000 / (ask + bid)``."""
    return (ask_e8 - bid_e8) * 20_000 / (ask_e8 + bid_e8)


def microprice_deviation_bp(bid_e8: int, bid_qty_e8: int, ask_e8: int, ask_qty_e8: int) -> float:
    """``1e4 * (microprice - M) / M`` exactly, rounded once; Python ints (beyond 2**53).

    With ``microprice = (bid * ask_qty + ask * bid_qty) / (bid_qty + ask_qty)`` this is
    ``1e4 * (ask - bid) * (bid_qty - ask_qty) / ((bid_qty + ask_qty) * (ask + bid))``.
    The caller guarantees ``bid_qty + ask_qty > 0``.
    """
    return (10_000 * (ask_e8 - bid_e8) * (bid_qty_e8 - ask_qty_e8)) / (
        (bid_qty_e8 + ask_qty_e8) * (ask_e8 + bid_e8)
    )
