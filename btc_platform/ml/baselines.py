"""Baselines the model must beat, fitted on the training split only and scored like it.

- ``zero``: ŷ = 0, the no-information forecast of a near-martingale price.
- ``momentum``: ŷ = 2 · ret_5s, the last 5-second log return extrapolated over the
  10-second horizon. Not 10 · ret_1s: a single second's return is dominated by the last
  trade bouncing between bid and ask, and multiplying that noise by ten makes a baseline
  that loses to zero for a reason unrelated to momentum; five seconds average the bounce out.
- ``linear``: ordinary least squares with intercept on the scaled train features.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from btc_platform.ml.dataset import TrainingSet
from btc_platform.ml.scaler import Scaler
from realtime.features.contract import CONTRACT_V1

BASELINE_NAMES = ("zero", "momentum", "linear")
MOMENTUM_FEATURE = "ret_5s"
MOMENTUM_MULTIPLIER = 2.0
"""Horizon / window: 10 s / 5 s."""


def zero_predictions(features: np.ndarray) -> np.ndarray:
    """Zeros, float64 [N]."""
    return np.zeros(len(features), dtype=np.float64)


def momentum_predictions(features: np.ndarray) -> np.ndarray:
    """``2 · ret_5s`` per row of contract-order ``features`` [N, K], float64 [N]."""
    column = CONTRACT_V1.model_inputs.index(MOMENTUM_FEATURE)
    return MOMENTUM_MULTIPLIER * np.asarray(features, dtype=np.float64)[:, column]


@dataclass(frozen=True)
class LinearBaseline:
    """``ŷ = scaler.transform(x) @ coef + intercept``."""

    scaler: Scaler
    coef: np.ndarray
    intercept: float

    @classmethod
    def fit(cls, train: TrainingSet, scaler: Scaler) -> LinearBaseline:
        """Least squares (``numpy.linalg.lstsq``, minimum-norm if rank deficient) of the train
        labels on the train features scaled by ``scaler`` (itself fitted on train)."""
        scaled = scaler.transform(train.features)
        design = np.column_stack([np.ones(len(scaled)), scaled])
        solution, *_ = np.linalg.lstsq(design, train.labels, rcond=None)
        return cls(scaler, solution[1:], float(solution[0]))

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Predictions for raw ``features`` [N, K], float64 [N]."""
        return self.scaler.transform(features) @ self.coef + self.intercept


@dataclass(frozen=True)
class Baselines:
    """The three baselines, ready to predict any split."""

    linear: LinearBaseline

    @classmethod
    def fit(cls, train: TrainingSet, scaler: Scaler) -> Baselines:
        return cls(LinearBaseline.fit(train, scaler))

    def predictions(self, features: np.ndarray) -> dict[str, np.ndarray]:
        """Each baseline's predictions for raw ``features`` [N, K], keyed by name."""
        return {
            "zero": zero_predictions(features),
            "momentum": momentum_predictions(features),
            "linear": self.linear.predict(features),
        }
