"""Per-feature standardisation fitted on the training split only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Scaler:
    """``(x - mean) / scale`` per feature; ``mean`` and ``scale`` are float64 [K]."""

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, features: np.ndarray) -> Scaler:
        """Mean and population std (ddof=0) of ``features`` [N, K], N >= 1.

        A constant or non-finite column gets scale 1.0, so it passes through centred
        instead of dividing by zero.
        """
        if features.ndim != 2 or features.shape[0] == 0:
            raise ValueError(f"cannot fit a scaler on features of shape {features.shape}")
        values = np.asarray(features, dtype=np.float64)
        with np.errstate(over="ignore", invalid="ignore"):  # handled just below
            mean = values.mean(axis=0)
            std = values.std(axis=0, ddof=0)
        scale = np.where(np.isfinite(std) & (std > 0), std, 1.0)
        return cls(mean, scale)

    def transform(self, features: np.ndarray) -> np.ndarray:
        """Standardised float64 copy of ``features`` [N, K]."""
        return (np.asarray(features, dtype=np.float64) - self.mean) / self.scale
