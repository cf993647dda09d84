"""Error and direction metrics, the binomial tail, and hit-rate by decile."""

from __future__ import annotations

import itertools
from fractions import Fraction
from math import comb

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from btc_platform.ml.metrics import binomial_p_value, compute_metrics, hit_rate_by_decile


def _exact_tail(hits: int, n: int) -> float:
    """``P(X >= hits)`` as a correctly rounded float, from exact integers."""
    return float(Fraction(sum(comb(n, k) for k in range(max(hits, 0), n + 1)), 2**n))


def test_errors_and_hits_of_a_small_example() -> None:
    y = np.array([1e-4, -2e-4, 3e-4, -1e-4])
    yhat = np.array([2e-4, 1e-4, 1e-4, -1e-4])

    metrics = compute_metrics(yhat, y)

    assert metrics.mae == pytest.approx((1e-4 + 3e-4 + 2e-4 + 0) / 4)
    assert metrics.mse == pytest.approx((1e-8 + 9e-8 + 4e-8) / 4)
    assert (metrics.n, metrics.n_directional, metrics.hits) == (4, 4, 3)
    assert metrics.hit_rate == 0.75


def test_zero_predictions_and_zero_labels_are_not_calls() -> None:
    y = np.array([1e-4, 0.0, -1e-4, 2e-4, 0.0])
    yhat = np.array([1e-4, 1e-4, 0.0, -1e-4, 0.0])

    metrics = compute_metrics(yhat, y)

    # only rows 0 (hit) and 3 (miss) have both a direction and a call
    assert (metrics.n, metrics.n_directional, metrics.hits) == (5, 2, 1)
    assert metrics.hit_rate == 0.5


def test_the_zero_baseline_has_no_hit_rate() -> None:
    metrics = compute_metrics(np.zeros(3), np.array([1e-4, -1e-4, 2e-4]))

    assert metrics.hit_rate is None
    assert (metrics.n_directional, metrics.hits) == (0, 0)
    assert metrics.mae == pytest.approx(4e-4 / 3)


def test_mismatched_or_empty_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="3 predictions for 2 labels"):
        compute_metrics(np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match="no rows"):
        compute_metrics(np.zeros(0), np.zeros(0))


@pytest.mark.parametrize(
    ("hits", "n", "expected"),
    [
        (8, 10, 0.0546875),  # 56 / 1024
        (550, 1_000, 0.000865268042488159),  # about 0.000865
        (10, 10, 2.0**-10),
        (5, 10, 0.623046875),  # 638 / 1024
        (0, 10, 1.0),
        (11, 10, 0.0),
        (1, 1, 0.5),
        (0, 0, 1.0),
    ],
)
def test_known_binomial_tails(hits: int, n: int, expected: float) -> None:
    assert binomial_p_value(hits, n) == pytest.approx(expected, rel=1e-12, abs=0)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 400).flatmap(lambda n: st.tuples(st.integers(-2, n + 2), st.just(n))))
def test_tail_matches_exact_arithmetic(case: tuple[int, int]) -> None:
    hits, n = case
    assert binomial_p_value(hits, n) == pytest.approx(_exact_tail(hits, n), rel=1e-11, abs=0)


def test_large_n_is_stable() -> None:
    n = 1_000_000
    # scipy.stats.binom.sf(500_999, 10**6, 0.5) = 0.0228041499326948 (Loader's algorithm)
    assert binomial_p_value(501_000, n) == pytest.approx(0.0228041499326948, rel=1e-11)
    # symmetry: P(X >= h) + P(X >= n - h + 1) = 1
    for hits in (499_000, 500_000, 500_001, 500_700):
        assert binomial_p_value(hits, n) + binomial_p_value(n - hits + 1, n) == pytest.approx(1.0)
    # 1,000 sigma out: far below the smallest double, so 0.0 and no error
    assert binomial_p_value(600_000, n) == 0.0
    # scipy.stats.binom.sf(500_099_999, 10**9, 0.5) = 1.270074179881551e-10
    assert binomial_p_value(500_100_000, 10**9) == pytest.approx(1.270074179881551e-10, rel=1e-9)


def test_tail_decreases_with_hits() -> None:
    values = [binomial_p_value(hits, 2_001) for hits in range(900, 1_200)]

    assert all(a > b for a, b in itertools.pairwise(values))


def test_negative_n_is_refused() -> None:
    with pytest.raises(ValueError, match="n must be"):
        binomial_p_value(1, -1)


def test_hit_rate_by_decile_of_abs_prediction() -> None:
    rng = np.random.default_rng(3)
    yhat = rng.normal(0, 1e-4, 1_003)
    # the bigger the prediction, the likelier its sign is right
    right = rng.random(1_003) < 0.5 + 0.4 * np.abs(yhat) / np.abs(yhat).max()
    y = np.where(right, np.sign(yhat), -np.sign(yhat)) * 1e-4

    deciles = hit_rate_by_decile(yhat, y)

    assert [row["decile"] for row in deciles] == list(range(1, 11))
    assert sum(row["n"] for row in deciles) == 1_003
    assert {row["n"] for row in deciles} == {100, 101}
    means = [row["mean_abs_yhat"] for row in deciles]
    assert means == sorted(means)
    assert deciles[-1]["hit_rate"] > deciles[0]["hit_rate"]
    first = np.argsort(np.abs(yhat), kind="stable")[:101]
    assert deciles[0]["hit_rate"] == compute_metrics(yhat[first], y[first]).hit_rate


def test_hit_rate_by_decile_with_few_rows_and_no_calls() -> None:
    deciles = hit_rate_by_decile(np.zeros(4), np.array([1.0, -1.0, 1.0, 0.0]))

    assert len(deciles) == 4
    assert all(row["hit_rate"] is None and row["n_directional"] == 0 for row in deciles)
