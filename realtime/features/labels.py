"""Labels of contract v1: the 10-second-ahead log return of the last trade price.

``y_t = log(P_{t+10}) - log(P_t)``. The leakage guard is structural: a label needs second
``t + horizon`` to be complete, so the last ``horizon`` seconds of a range (and any second
before the first trade) have no label and no training row.
"""

from __future__ import annotations

import numpy as np

from realtime.features.bars import Bars
from realtime.features.engine import carried_last_price

HORIZON_S = 10


def labels_v1(
    bars: Bars, *, horizon_s: int = HORIZON_S, last_complete_sec: int | None = None
) -> np.ndarray:
    """Label per second of ``bars`` (NaN where undefined).

    ``last_complete_sec`` is the newest second whose trades are all known (default: the last
    bar); labels never read past it, so an open second cannot leak into training.
    """
    n = len(bars)
    labels = np.full(n, np.nan)
    if n == 0:
        return labels
    if last_complete_sec is None:
        last_complete_sec = bars.start_sec + n - 1
    row = np.arange(n)
    _, traded, _, log_price = carried_last_price(bars)
    complete = n - max(0, bars.start_sec + n - 1 - last_complete_sec)
    ahead = row + horizon_s
    valid = traded & (ahead < complete)
    labels[valid] = log_price[ahead[valid]] - log_price[valid]
    return labels


def training_mask(
    features: np.ndarray, labels: np.ndarray, model_input_indices: tuple[int, ...]
) -> np.ndarray:
    """Rows usable for training: a label and every model input defined."""
    return ~np.isnan(labels) & ~np.isnan(features[:, list(model_input_indices)]).any(axis=1)
