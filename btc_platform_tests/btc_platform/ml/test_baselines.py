"""The baselines the model must beat."""

from __future__ import annotations

import numpy as np

from btc_platform.ml.baselines import (
    BASELINE_NAMES,
    Baselines,
    LinearBaseline,
    momentum_predictions,
    zero_predictions,
)
from btc_platform.ml.dataset import TrainingSet
from btc_platform.ml.scaler import Scaler
from realtime.features.contract import CONTRACT_V1

K = len(CONTRACT_V1.model_inputs)
RET_5S = CONTRACT_V1.model_inputs.index("ret_5s")


def _set(features: np.ndarray, labels: np.ndarray) -> TrainingSet:
    return TrainingSet(np.arange(len(labels), dtype=np.int64), features, labels)


def test_zero_predicts_zero() -> None:
    assert zero_predictions(np.ones((4, K))).tolist() == [0.0] * 4


def test_momentum_extrapolates_the_last_five_seconds_over_ten() -> None:
    features = np.zeros((3, K))
    features[:, RET_5S] = [1e-4, -2e-4, 0.0]
    features[:, CONTRACT_V1.model_inputs.index("ret_1s")] = 9.0  # not read

    assert momentum_predictions(features).tolist() == [2e-4, -4e-4, 0.0]


def test_linear_recovers_an_exact_linear_relation_with_intercept() -> None:
    rng = np.random.default_rng(5)
    features = rng.normal(0, 1, (500, K)) * rng.uniform(1e-5, 1e3, K)
    coef_raw = rng.normal(0, 1e-4, K) / features.std(axis=0)
    labels = features @ coef_raw + 3e-5
    train = _set(features, labels)

    baseline = LinearBaseline.fit(train, Scaler.fit(features))

    unseen = rng.normal(0, 1, (50, K)) * features.std(axis=0)
    np.testing.assert_allclose(baseline.predict(unseen), unseen @ coef_raw + 3e-5, atol=1e-12)


def test_linear_sees_only_the_train_rows_and_the_train_scaler() -> None:
    rng = np.random.default_rng(6)
    train = _set(rng.normal(0, 1, (300, K)), rng.normal(0, 1e-4, 300))
    scaler = Scaler.fit(train.features)

    fitted = Baselines.fit(train, scaler)
    refitted = Baselines.fit(train, scaler)

    assert fitted.linear.scaler is scaler
    np.testing.assert_array_equal(fitted.linear.coef, refitted.linear.coef)


def test_predictions_name_every_baseline() -> None:
    rng = np.random.default_rng(7)
    train = _set(rng.normal(0, 1, (100, K)), rng.normal(0, 1e-4, 100))
    predictions = Baselines.fit(train, Scaler.fit(train.features)).predictions(train.features[:9])

    assert tuple(predictions) == BASELINE_NAMES
    assert all(values.shape == (9,) for values in predictions.values())
