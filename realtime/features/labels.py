"""Labels: the 10-second-ahead log return of the last trade price (v1) or of the mid (v2).

``y_t = log(P_{t+10}) - log(P_t)``, ``P`` read exactly as the features read it (v1: the
carried last trade price; v2: the mid of the carried top of book). The leakage guard is
structural: a label needs second ``t + horizon`` to be complete, so the last ``horizon``
seconds of a range (and any second before the first price) have no label and no training
row.
"""

from __future__ import annotations

import numpy as np

from realtime.features.bars import Bars
from realtime.features.engine import carried_last_price
from realtime.features.engine_v2 import carried_top_of_book

HORIZON_S = 10


def labels_v1(
    bars: Bars, *, horizon_s: int = HORIZON_S, last_complete_sec: int | None = None
) -> np.ndarray:
    """Label per second of ``bars`` (NaN where undefined).

    ``last_complete_sec`` is the newest second whose trades are all known (default: the last
    bar); labels never read past it, so an open second cannot leak into training.
    """
    if len(bars) == 0:
        return np.full(0, np.nan)
    _, traded, _, log_price = carried_last_price(bars)
    return _forward_log_returns(bars, traded, log_price, horizon_s, last_complete_sec)


def labels_v2(
    bars: Bars, *, horizon_s: int = HORIZON_S, last_complete_sec: int | None = None
) -> np.ndarray:
    """Label per second of ``bars`` on the mid price (NaN where undefined); as ``labels_v1``."""
    if len(bars) == 0:
        return np.full(0, np.nan)
    top = carried_top_of_book(bars)
    return _forward_log_returns(bars, top.quoted, top.log_mid, horizon_s, last_complete_sec)


def _forward_log_returns(
    bars: Bars,
    defined: np.ndarray,
    log_price: np.ndarray,
    horizon_s: int,
    last_complete_sec: int | None,
) -> np.ndarray:
    n = len(bars)
    labels = np.full(n, np.nan)
    if last_complete_sec is None:
        last_complete_sec = bars.start_sec + n - 1
    row = np.arange(n)
    complete = n - max(0, bars.start_sec + n - 1 - last_complete_sec)
    ahead = row + horizon_s
    valid = defined & (ahead < complete)
    labels[valid] = log_price[ahead[valid]] - log_price[valid]
    return labels


def training_mask(
    features: np.ndarray, labels: np.ndarray, model_input_indices: tuple[int, ...]
) -> np.ndarray:
    """Rows usable for training: a label and every model input defined."""
    return ~np.isnan(labels) & ~np.isnan(features[:, list(model_input_indices)]).any(axis=1)
