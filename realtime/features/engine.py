"""The feature engine of contract v1: a whole range of bars at once, or one second at a time.

``batch_features(bars)`` is the history path (numpy over a day); ``LiveFeatureEngine`` is
the live path (one closed bar in, one vector out, O(window) work). Both follow
``schema_v1.json`` and call ``formulas`` for every float, so for the same bars they return
the same float64 bit patterns, warm-up and empty seconds included.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from realtime.features import formulas as f
from realtime.features.bars import NONE, US_PER_SECOND, Bar, Bars
from realtime.features.contract import CONTRACT_V1

FEATURES = CONTRACT_V1.names
N_FEATURES = len(FEATURES)
_INDEX = {name: index for index, name in enumerate(FEATURES)}
_RETURN_LAGS = (
    ("ret_1s", "last_price_minus_1s", 1),
    ("ret_2s", None, 2),
    ("ret_5s", "last_price_minus_5s", 5),
)
_SHORT = 5
_STD = 10
_LONG = f.MEDIAN_WINDOW  # == f.P95_WINDOW


def batch_features(bars: Bars) -> np.ndarray:
    """Feature vectors for every second of ``bars``: shape ``(len(bars), N_FEATURES)``.

    Row ``i`` is second ``bars.start_sec + i``; the stream starts at ``bars.start_sec``.
    """
    n = len(bars)
    out = np.full((n, N_FEATURES), np.nan)
    if n == 0:
        return out
    row = np.arange(n)
    _check_exact(bars)
    last_seen, traded, last_price, log_price = carried_last_price(bars)

    def lag(values: np.ndarray, k: int, fill: float | int) -> np.ndarray:
        shifted = np.full_like(values, fill)
        if k < n:
            shifted[k:] = values[: n - k]
        return shifted

    def set_valid(name: str, values: np.ndarray, valid: np.ndarray) -> None:
        out[:, _INDEX[name]] = np.where(valid, values, np.nan)

    for return_name, difference_name, k in _RETURN_LAGS:
        valid = (row >= k) & lag(traded, k, False)
        set_valid(return_name, log_price - lag(log_price, k, 0.0), valid)
        if difference_name:
            set_valid(difference_name, f.to_units(last_price - lag(last_price, k, 0)), valid)

    buy, sell, count = bars.buy_qty_e8, bars.sell_qty_e8, bars.n_trades
    full_short = row >= _SHORT - 1
    buy_5s, sell_5s, count_5s = (_window_sum(column, _SHORT) for column in (buy, sell, count))
    with np.errstate(invalid="ignore", divide="ignore"):
        out[:, _INDEX["n_trades_1s"]] = count
        out[:, _INDEX["buy_vol_1s"]] = f.to_units(buy)
        out[:, _INDEX["sell_vol_1s"]] = f.to_units(sell)
        out[:, _INDEX["tvi_1s"]] = np.where(buy + sell > 0, f.imbalance(buy, sell), 0.0)
        out[:, _INDEX["avg_trade_size_1s"]] = np.where(
            count > 0, f.mean_trade_size(buy + sell, count), 0.0
        )
        set_valid("n_trades_5s", count_5s, full_short)
        set_valid("buy_vol_5s", f.to_units(buy_5s), full_short)
        set_valid("sell_vol_5s", f.to_units(sell_5s), full_short)
        set_valid(
            "tvi_5s", np.where(buy_5s + sell_5s > 0, f.imbalance(buy_5s, sell_5s), 0.0), full_short
        )

    # VWAP: notional sums exceed int64, so this one runs on Python ints, second by second.
    volume_5s = (buy_5s + sell_5s).tolist()
    notional_5s = _python_window_sum(bars.notional_e16, _SHORT)
    prices = last_price.tolist()
    vwap_dev = out[:, _INDEX["vwap_5s_dev"]]
    for i in np.flatnonzero(full_short & (buy_5s + sell_5s > 0)).tolist():
        vwap_dev[i] = f.vwap_deviation(prices[i], volume_5s[i], notional_5s[i])

    returns = np.where(np.isnan(out[:, _INDEX["ret_1s"]]), 0.0, out[:, _INDEX["ret_1s"]])
    window = [lag(returns, k, 0.0) for k in range(_STD - 1, -1, -1)]  # oldest first
    set_valid(
        "vol_ret_10s", f.population_std(window, np.sqrt), (row >= _STD) & lag(traded, _STD, False)
    )

    if n >= _LONG:
        full_long = row >= _LONG - 1
        counts = np.partition(
            sliding_window_view(count, _LONG), (f.MEDIAN_LOW, f.MEDIAN_HIGH), axis=1
        )
        burst = np.zeros(n)
        burst[_LONG - 1 :] = (
            2 * count[_LONG - 1 :] > counts[:, f.MEDIAN_LOW] + counts[:, f.MEDIAN_HIGH]
        )
        set_valid("burst_1s", burst, full_long)

        sizes = np.partition(sliding_window_view(bars.max_qty_e8, _LONG), f.P95_RANK, axis=1)
        largest_5s = np.zeros(n, dtype=np.int64)
        largest_5s[_SHORT - 1 :] = sliding_window_view(bars.max_qty_e8, _SHORT).max(axis=1)
        large = np.zeros(n)
        large[_LONG - 1 :] = (largest_5s[_LONG - 1 :] >= sizes[:, f.P95_RANK]) & (
            count_5s[_LONG - 1 :] > 0
        )
        set_valid("large_trade_flag_5s", large, full_long)

    last_time = bars.last_trade_time_us[last_seen]
    since_ms = ((bars.ts_sec + 1) * US_PER_SECOND - last_time) // 1000
    set_valid("time_since_last_trade_ms", since_ms, traded)

    quote_seen = np.maximum.accumulate(np.where(bars.bid_price_e8 != NONE, row, -1))
    quoted = quote_seen >= 0
    spread = f.to_units(bars.ask_price_e8[quote_seen] - bars.bid_price_e8[quote_seen])
    set_valid("spread", spread, quoted)
    return out


def carried_last_price(bars: Bars) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per second: the row of the last trade so far (-1 if none), whether one exists, its
    price_e8 (``NONE`` if none) and ``log_price`` of it (NaN if none). Features and labels
    both read prices through this, so they agree on what ``P_t`` is."""
    row = np.arange(len(bars))
    last_seen = np.maximum.accumulate(np.where(bars.last_price_e8 != NONE, row, -1))
    traded = last_seen >= 0
    last_price = np.where(traded, bars.last_price_e8[last_seen], NONE)
    log_price = np.full(len(bars), np.nan)
    log_price[traded] = [f.log_price(price) for price in last_price[traded].tolist()]
    return last_seen, traded, last_price, log_price


def _window_sum(values: np.ndarray, width: int) -> np.ndarray:
    """Exact int64 sum of ``values[i - width + 1 .. i]`` (partial at the start)."""
    cumulative = np.concatenate([[0], np.cumsum(values)])
    start = np.maximum(np.arange(len(values)) - width + 1, 0)
    return cumulative[1:] - cumulative[start]


def _python_window_sum(values: list[int], width: int) -> list[int]:
    sums, running = [], 0
    for i, value in enumerate(values):
        running += value
        if i >= width:
            running -= values[i - width]
        sums.append(running)
    return sums


def _check_exact(bars: Bars) -> None:
    """Refuse bars whose float conversions would not be exact (the parity premise).

    The largest integers turned into floats are 5-second quantity sums and prices.
    """
    largest_qty = max(int(bars.buy_qty_e8.max(initial=0)), int(bars.sell_qty_e8.max(initial=0)))
    largest_price = max(
        int(bars.last_price_e8.max(initial=0)), int(bars.ask_price_e8.max(initial=0))
    )
    if max(2 * _SHORT * largest_qty, largest_price) >= f.EXACT_FLOAT_LIMIT:
        raise ValueError(
            "bar values too large for exact float conversion (see formulas.EXACT_FLOAT_LIMIT)"
        )


class LiveFeatureEngine:
    """Contract v1 one second at a time: feed consecutive closed bars, get each vector.

    The first bar fed is the stream's first second. Holds only the last 60 seconds.
    """

    def __init__(self) -> None:
        self.start_sec: int | None = None
        self.ts_sec: int | None = None
        self._last_price = NONE
        self._last_time = NONE
        self._bid = NONE
        self._ask = NONE
        self._prices: deque[int] = deque(maxlen=_SHORT + 1)  # carried last price, newest last
        self._logs: deque[float] = deque(maxlen=_SHORT + 1)
        self._returns: deque[float] = deque(maxlen=_STD)
        self._buy: deque[int] = deque(maxlen=_SHORT)
        self._sell: deque[int] = deque(maxlen=_SHORT)
        self._notional: deque[int] = deque(maxlen=_SHORT)
        self._counts_short: deque[int] = deque(maxlen=_SHORT)
        self._largest_short: deque[int] = deque(maxlen=_SHORT)
        self._counts: deque[int] = deque(maxlen=_LONG)
        self._largest: deque[int] = deque(maxlen=_LONG)

    def skip_to(self, ts_sec: int) -> None:
        """Continue as if empty bars through second ``ts_sec`` had been fed (no vectors).

        Invariant: only after ``_LONG`` (60) seconds without trades, the longest window the
        engine holds. Its state is then a fixed point of an empty bar (every window all
        zeros, the carried price and quote unchanged, each return 0 or NaN as before), so
        skipping equals feeding them for all it keeps; otherwise ``ValueError``. This is what
        ``BarBuilder(keep_quiet_s>=60)`` leaving out the middle of a long quiet run relies on.
        """
        if self.ts_sec is None:
            raise ValueError("no bar fed yet: there is nothing to continue")
        if ts_sec <= self.ts_sec:
            return
        if len(self._counts) < _LONG or any(self._counts):
            raise ValueError(
                f"cannot skip from second {self.ts_sec} to {ts_sec}: the last {_LONG} seconds "
                "were not all without trades, so empty bars would change the windows"
            )
        self.ts_sec = ts_sec

    def on_bar(self, bar: Bar) -> list[float]:
        """The feature vector of ``bar``'s second, in contract order."""
        if self.ts_sec is None:
            self.start_sec = bar.ts_sec
        elif bar.ts_sec != self.ts_sec + 1:
            raise ValueError(
                f"bar for second {bar.ts_sec} after {self.ts_sec}: bars must be consecutive"
            )
        self.ts_sec = bar.ts_sec
        seconds = bar.ts_sec - self.start_sec + 1  # seconds seen, this one included

        if bar.last_price_e8 != NONE:
            self._last_price = bar.last_price_e8
            self._last_time = bar.last_trade_time_us
        if bar.bid_price_e8 != NONE:
            self._bid, self._ask = bar.bid_price_e8, bar.ask_price_e8
        price = self._last_price
        log_price = f.log_price(price) if price != NONE else math.nan
        buy, sell, count = bar.buy_qty_e8, bar.sell_qty_e8, bar.n_trades
        self._prices.append(price)
        self._logs.append(log_price)
        self._buy.append(buy)
        self._sell.append(sell)
        self._notional.append(bar.notional_e16)
        self._counts_short.append(count)
        self._largest_short.append(bar.max_qty_e8)
        self._counts.append(count)
        self._largest.append(bar.max_qty_e8)

        vector = [math.nan] * N_FEATURES
        for return_name, difference_name, k in _RETURN_LAGS:
            if seconds > k and self._prices[-1 - k] != NONE:
                vector[_INDEX[return_name]] = log_price - self._logs[-1 - k]
                if difference_name:
                    vector[_INDEX[difference_name]] = f.to_units(price - self._prices[-1 - k])
        self._returns.append(vector[_INDEX["ret_1s"]])

        vector[_INDEX["n_trades_1s"]] = float(count)
        vector[_INDEX["buy_vol_1s"]] = f.to_units(buy)
        vector[_INDEX["sell_vol_1s"]] = f.to_units(sell)
        vector[_INDEX["tvi_1s"]] = f.imbalance(buy, sell) if buy + sell > 0 else 0.0
        vector[_INDEX["avg_trade_size_1s"]] = (
            f.mean_trade_size(buy + sell, count) if count > 0 else 0.0
        )

        if seconds >= _SHORT:
            buy_5s, sell_5s = sum(self._buy), sum(self._sell)
            volume_5s = buy_5s + sell_5s
            vector[_INDEX["n_trades_5s"]] = float(sum(self._counts_short))
            vector[_INDEX["buy_vol_5s"]] = f.to_units(buy_5s)
            vector[_INDEX["sell_vol_5s"]] = f.to_units(sell_5s)
            vector[_INDEX["tvi_5s"]] = f.imbalance(buy_5s, sell_5s) if volume_5s > 0 else 0.0
            if volume_5s > 0:
                vector[_INDEX["vwap_5s_dev"]] = f.vwap_deviation(
                    price, volume_5s, sum(self._notional)
                )

        # Ten valid returns reach back to t-10 >= start with a trade by then: the batch rule.
        if len(self._returns) == _STD and not any(math.isnan(r) for r in self._returns):
            vector[_INDEX["vol_ret_10s"]] = f.population_std(list(self._returns), math.sqrt)

        if seconds >= _LONG:
            counts = sorted(self._counts)
            median_twice = counts[f.MEDIAN_LOW] + counts[f.MEDIAN_HIGH]
            vector[_INDEX["burst_1s"]] = 1.0 if 2 * count > median_twice else 0.0
            threshold = sorted(self._largest)[f.P95_RANK]
            large = sum(self._counts_short) > 0 and max(self._largest_short) >= threshold
            vector[_INDEX["large_trade_flag_5s"]] = 1.0 if large else 0.0

        if self._last_time != NONE:
            since_us = (bar.ts_sec + 1) * US_PER_SECOND - self._last_time
            vector[_INDEX["time_since_last_trade_ms"]] = float(since_us // 1000)
        if self._bid != NONE:
            vector[_INDEX["spread"]] = f.to_units(self._ask - self._bid)
        return vector
