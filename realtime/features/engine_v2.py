"""Contract v2: the v1 vector followed by the book features, batch and live.

The book features read two per-second views (``schema_v2.json``, ``grid.book``): the top of
book carried from the last best bid/ask (in the trade ``Bar``), and the depth book's state at
the end of the second (``BookBar``). Every float comes from ``formulas``, so both paths give
the same bits, as in v1.
"""

from __future__ import annotations

import math
from collections import deque
from typing import NamedTuple

import numpy as np

from realtime.features import formulas as f
from realtime.features.bars import NONE, Bar, Bars
from realtime.features.book_bars import BookBar, BookBars
from realtime.features.contract import CONTRACT_V1, CONTRACT_V2
from realtime.features.engine import LiveFeatureEngine, batch_features

FEATURES_V2 = CONTRACT_V2.names
BOOK_FEATURES = FEATURES_V2[len(CONTRACT_V1.names) :]
N_FEATURES_V2 = len(FEATURES_V2)
_INDEX = {name: index for index, name in enumerate(BOOK_FEATURES)}
_MID_LAGS = (("mid_ret_1s", 1), ("mid_ret_5s", 5))

if CONTRACT_V2.names[: len(CONTRACT_V1.names)] != CONTRACT_V1.names:
    raise ImportError("contract v2 must extend v1: its first features are v1's, in order")


class TopOfBook(NamedTuple):
    """Per second, the top of book carried from the last best bid/ask (``NONE`` before one)."""

    quoted: np.ndarray
    bid_e8: np.ndarray
    ask_e8: np.ndarray
    bid_qty_e8: np.ndarray
    ask_qty_e8: np.ndarray
    log_mid: np.ndarray
    """``log(M)``; NaN before the first best bid/ask."""


def carried_top_of_book(bars: Bars) -> TopOfBook:
    """The top of book at the end of every second; features and labels both read it."""
    row = np.arange(len(bars))
    seen = np.maximum.accumulate(np.where(bars.bid_price_e8 != NONE, row, -1))
    quoted = seen >= 0
    at = np.maximum(seen, 0)

    def carried(column: np.ndarray) -> np.ndarray:
        return np.where(quoted, column[at], NONE)

    bid, ask = carried(bars.bid_price_e8), carried(bars.ask_price_e8)
    log_mid = np.full(len(bars), np.nan)
    log_mid[quoted] = [
        f.log_mid(b, a) for b, a in zip(bid[quoted].tolist(), ask[quoted].tolist(), strict=True)
    ]
    return TopOfBook(quoted, bid, ask, carried(bars.bid_qty_e8), carried(bars.ask_qty_e8), log_mid)


def batch_features_v2(bars: Bars, book_bars: BookBars) -> np.ndarray:
    """Contract-v2 vectors for every second of ``bars``; ``book_bars`` covers the same seconds."""
    if book_bars.start_sec != bars.start_sec or len(book_bars) != len(bars):
        raise ValueError("book bars must cover exactly the seconds of the trade bars")
    n = len(bars)
    book = np.full((n, len(BOOK_FEATURES)), np.nan)
    top = carried_top_of_book(bars)
    quoted = top.quoted
    with np.errstate(invalid="ignore", divide="ignore"):
        book[:, _INDEX["spread_bp"]] = np.where(quoted, f.spread_bp(top.bid_e8, top.ask_e8), np.nan)
    bid, ask = top.bid_e8.tolist(), top.ask_e8.tolist()
    bid_qty, ask_qty = top.bid_qty_e8.tolist(), top.ask_qty_e8.tolist()
    microprice = book[:, _INDEX["microprice_dev_bp"]]
    for i in np.flatnonzero(quoted & (top.bid_qty_e8 + top.ask_qty_e8 > 0)).tolist():
        microprice[i] = f.microprice_deviation_bp(bid[i], bid_qty[i], ask[i], ask_qty[i])

    row = np.arange(n)
    for name, k in _MID_LAGS:
        lagged_quoted = np.zeros(n, dtype=bool)
        lagged_log = np.zeros(n)
        lagged_quoted[k:] = quoted[: n - k]
        lagged_log[k:] = top.log_mid[: n - k]
        valid = (row >= k) & lagged_quoted
        book[:, _INDEX[name]] = np.where(valid, top.log_mid - lagged_log, np.nan)

    depth_bid, depth_ask = book_bars.bid_depth_e8, book_bars.ask_depth_e8
    valid_book = (depth_bid != NONE) & (depth_bid + depth_ask > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        book[:, _INDEX["book_imbalance_5"]] = np.where(
            valid_book, f.imbalance(depth_bid, depth_ask), np.nan
        )
    return np.hstack([batch_features(bars), book])


class LiveFeatureEngineV2:
    """Contract v2 one second at a time: consecutive (bar, book bar) pairs in, vectors out."""

    def __init__(self) -> None:
        self._v1 = LiveFeatureEngine()
        self._top: tuple[int, int, int, int] | None = None
        self._log_mids: deque[float] = deque(maxlen=max(k for _, k in _MID_LAGS) + 1)

    def on_bar(self, bar: Bar, book_bar: BookBar) -> list[float]:
        """The vector of ``bar``'s second; ``book_bar`` must be of the same second."""
        if book_bar.ts_sec != bar.ts_sec:
            raise ValueError(f"book bar {book_bar.ts_sec} paired with bar {bar.ts_sec}")
        vector = self._v1.on_bar(bar)  # also checks that seconds are consecutive
        seconds = bar.ts_sec - (self._v1.start_sec or bar.ts_sec) + 1
        if bar.bid_price_e8 != NONE:
            self._top = (bar.bid_price_e8, bar.bid_qty_e8, bar.ask_price_e8, bar.ask_qty_e8)
        book = [math.nan] * len(BOOK_FEATURES)
        log_mid = math.nan
        if self._top is not None:
            bid, bid_qty, ask, ask_qty = self._top
            log_mid = f.log_mid(bid, ask)
            book[_INDEX["spread_bp"]] = f.spread_bp(bid, ask)
            if bid_qty + ask_qty > 0:
                book[_INDEX["microprice_dev_bp"]] = f.microprice_deviation_bp(
                    bid, bid_qty, ask, ask_qty
                )
        self._log_mids.append(log_mid)
        for name, k in _MID_LAGS:
            if seconds > k and not math.isnan(self._log_mids[-1 - k]):
                book[_INDEX[name]] = log_mid - self._log_mids[-1 - k]
        depth_bid, depth_ask = book_bar.bid_depth_e8, book_bar.ask_depth_e8
        if depth_bid != NONE and depth_bid + depth_ask > 0:
            book[_INDEX["book_imbalance_5"]] = f.imbalance(depth_bid, depth_ask)
        return vector + book
