"""Standardisation statistics."""

from __future__ import annotations

import numpy as np
import pytest

from btc_platform.ml.scaler import Scaler


def test_mean_and_population_std_per_feature() -> None:
    features = np.array([[1.0, 10.0, 5.0], [3.0, 30.0, 5.0], [5.0, 20.0, 5.0], [7.0, 40.0, 5.0]])

    scaler = Scaler.fit(features)

    np.testing.assert_array_equal(scaler.mean, [4.0, 25.0, 5.0])
    np.testing.assert_allclose(scaler.scale, [np.sqrt(5.0), np.sqrt(125.0), 1.0])
    standardised = scaler.transform(features)
    np.testing.assert_allclose(standardised[:, :2].mean(axis=0), 0.0, atol=1e-15)
    np.testing.assert_allclose(standardised[:, :2].std(axis=0), 1.0)
    np.testing.assert_array_equal(standardised[:, 2], 0.0)  # constant: centred, not divided by 0


def test_a_column_too_large_for_a_finite_std_passes_through_centred() -> None:
    scaler = Scaler.fit(np.array([[1e308], [-1e308], [1e308]]))

    assert scaler.scale.tolist() == [1.0]


def test_transform_leaves_its_input_alone() -> None:
    features = np.array([[1.0, 2.0], [3.0, 4.0]])
    Scaler.fit(features).transform(features)

    np.testing.assert_array_equal(features, [[1.0, 2.0], [3.0, 4.0]])


def test_no_rows_no_scaler() -> None:
    with pytest.raises(ValueError, match="shape"):
        Scaler.fit(np.empty((0, 3)))
