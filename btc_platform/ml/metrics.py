"""Error and direction metrics of predictions against realised 10-second log returns.

Direction: a row counts only when both the label and the prediction are nonzero. A zero
label has no direction to hit (a price unchanged over ten seconds is common for BTCUSDT at
a 0.01 tick), and a zero prediction is not a call. The zero baseline therefore makes no
calls at all: its ``hit_rate`` is ``None`` (JSON null), not 0.5, so an absent forecast
never reads as a coin flip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DECILES = 10
_TAIL_CUTOFF = 50.0
"""Stop summing binomial terms once they are e^-50 below the first: the rest is < 1e-19."""


@dataclass(frozen=True)
class Metrics:
    """``mae`` and ``mse`` in log-return units over all ``n`` rows; ``hit_rate`` = ``hits`` /
    ``n_directional`` over rows with nonzero label and prediction (``None`` when there are
    none)."""

    mae: float
    mse: float
    hit_rate: float | None
    n: int
    n_directional: int
    hits: int


def compute_metrics(yhat: np.ndarray, y: np.ndarray) -> Metrics:
    """Metrics of predictions ``yhat`` [N] against labels ``y`` [N] (N >= 1)."""
    yhat, y = _pair(yhat, y)
    if not len(y):
        raise ValueError("no rows to score")
    error = yhat - y
    n_directional, hits = _direction(yhat, y)
    return Metrics(
        mae=float(np.mean(np.abs(error))),
        mse=float(np.mean(error * error)),
        hit_rate=hits / n_directional if n_directional else None,
        n=len(y),
        n_directional=n_directional,
        hits=hits,
    )


def binomial_p_value(hits: int, n: int) -> float:
    """Exact one-sided ``P(X >= hits)`` for ``X ~ Binomial(n, 1/2)``.

    Terms are summed in log space from the tail's largest term outward, so nothing
    overflows and no term underflows before it stops mattering; cost O(sqrt(n)) (about
    5,000 terms at n = 10^6). Relative error ~1e-12 or better for any n; a tail below
    ~1e-308 returns 0.0.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if hits <= 0:
        return 1.0
    if hits > n:
        return 0.0
    if 2 * hits > n:
        return _upper_tail(hits, n)
    # P(X >= h) = 1 - P(X <= h - 1) = 1 - P(X >= n - h + 1) by symmetry; that tail is < 1/2,
    # so the subtraction loses nothing that matters.
    return 1.0 - _upper_tail(n - hits + 1, n)


def _upper_tail(hits: int, n: int) -> float:
    """``P(X >= hits)`` for ``n / 2 < hits <= n``, where the terms decrease from the first."""
    first = _log_binomial_half(hits, n)
    log_term = first
    total = 1.0  # the sum in units of exp(first)
    for k in range(hits, n):
        log_term += math.log((n - k) / (k + 1))
        if log_term - first < -_TAIL_CUTOFF:
            break
        total += math.exp(log_term - first)
    return min(1.0, math.exp(first + math.log(total)))


def _log_binomial_half(k: int, n: int) -> float:
    """``log P(X = k)`` for ``X ~ Binomial(n, 1/2)``, ``0 < k <= n``, to ~1e-15 absolute.

    Loader's saddle-point form (C. Loader, "Fast and accurate computation of binomial
    probabilities", 2000): Stirling remainders and the deviance term ``bd0`` instead of
    differences of ``lgamma`` values, which at n = 10^9 lose six digits to cancellation.
    """
    if k == n:
        return -n * math.log(2)
    half = n / 2
    log_core = _stirling_error(n) - _stirling_error(k) - _stirling_error(n - k)
    log_core -= _deviance(k, half) + _deviance(n - k, half)
    return log_core - 0.5 * (math.log(2 * math.pi) + math.log(k) + math.log1p(-k / n))


def _stirling_error(n: int) -> float:
    """``log(n!) - log(sqrt(2 pi n) (n / e)^n)`` for ``n >= 1``."""
    if n <= 15:  # lgamma is exact enough where the values are not large
        return math.lgamma(n + 1) - (n + 0.5) * math.log(n) + n - 0.5 * math.log(2 * math.pi)
    nn = n * n
    s0, s1, s2, s3, s4 = 1 / 12, 1 / 360, 1 / 1260, 1 / 1680, 1 / 1188
    if n > 500:
        return (s0 - s1 / nn) / n
    if n > 80:
        return (s0 - (s1 - s2 / nn) / nn) / n
    if n > 35:
        return (s0 - (s1 - (s2 - s3 / nn) / nn) / nn) / n
    return (s0 - (s1 - (s2 - (s3 - s4 / nn) / nn) / nn) / nn) / n


def _deviance(x: float, mean: float) -> float:
    """``x log(x / mean) + mean - x`` without cancellation when ``x`` is near ``mean``."""
    if abs(x - mean) < 0.1 * (x + mean):
        v = (x - mean) / (x + mean)
        total = (x - mean) * v
        term = 2 * x * v
        v *= v
        j = 1
        while True:
            term *= v
            updated = total + term / (2 * j + 1)
            if updated == total:
                return updated
            total = updated
            j += 1
    return x * math.log(x / mean) + mean - x


def hit_rate_by_decile(yhat: np.ndarray, y: np.ndarray) -> list[dict]:
    """Rows ranked by ``|yhat|`` and cut into ten groups of equal size (±1 row): per group
    ``decile`` (1 = smallest), ``n``, ``n_directional``, ``hit_rate`` (None without calls),
    ``mean_abs_yhat``. Empty groups (fewer than ten rows) are left out."""
    yhat, y = _pair(yhat, y)
    order = np.argsort(np.abs(yhat), kind="stable")
    rows = []
    for decile, members in enumerate(np.array_split(order, DECILES), start=1):
        if not len(members):
            continue
        n_directional, hits = _direction(yhat[members], y[members])
        rows.append(
            {
                "decile": decile,
                "n": len(members),
                "n_directional": n_directional,
                "hit_rate": hits / n_directional if n_directional else None,
                "mean_abs_yhat": float(np.mean(np.abs(yhat[members]))),
            }
        )
    return rows


def _direction(yhat: np.ndarray, y: np.ndarray) -> tuple[int, int]:
    """Rows with a nonzero label and prediction, and how many of them agree in sign."""
    called = (yhat != 0) & (y != 0)
    hits = np.count_nonzero(np.sign(yhat[called]) == np.sign(y[called]))
    return int(np.count_nonzero(called)), int(hits)


def _pair(yhat: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    yhat = np.asarray(yhat, dtype=np.float64).reshape(-1)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if yhat.shape != y.shape:
        raise ValueError(f"{len(yhat)} predictions for {len(y)} labels")
    return yhat, y
