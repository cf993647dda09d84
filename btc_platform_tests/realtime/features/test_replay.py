"""The replay comparison names the first differing second and feature, by bit pattern."""

from __future__ import annotations

import numpy as np
import pytest

from realtime.features.engine import FEATURES
from realtime.features.replay import compare


def test_identical_vectors_including_nan_compare_equal():
    batch = np.array([[np.nan, 1.0], [2.0, np.nan]])
    assert compare(batch, batch.copy(), start_sec=100) == (None, 0)


def test_one_ulp_is_a_mismatch_and_is_located():
    batch = np.zeros((3, len(FEATURES)))
    live = batch.copy()
    live[2, 4] = np.nextafter(0.0, 1.0)
    live[2, 7] = 1.0
    mismatch, count = compare(batch, live, start_sec=100)
    assert count == 2
    assert (mismatch.ts_sec, mismatch.feature, mismatch.live_value) == (102, FEATURES[4], 5e-324)


def test_negative_zero_is_not_zero():
    batch = np.zeros((1, len(FEATURES)))
    live = batch.copy()
    live[0, 0] = -0.0
    assert compare(batch, live, start_sec=0)[1] == 1


def test_shapes_must_agree():
    with pytest.raises(ValueError, match="shape"):
        compare(np.zeros((2, 3)), np.zeros((3, 3)), start_sec=0)
