"""The promotion gate, on constructed metrics and on trained models."""

from __future__ import annotations

import pytest

from btc_platform.ml.gate import Gate
from btc_platform.ml.metrics import Metrics
from btc_platform_tests.btc_platform.ml.synthetic import trained_outcome

ZERO = Metrics(mae=1.0e-4, mse=2e-8, hit_rate=None, n=10_000, n_directional=0, hits=0)


def _model(mae: float, hits: int, calls: int = 9_000) -> Metrics:
    return Metrics(mae, 1.5e-8, hits / calls, 10_000, calls, hits)


def test_promotable_when_mae_and_significant_hit_rate_both_pass() -> None:
    decision = Gate().decide(_model(9.5e-5, 4_700), ZERO)

    assert decision.promotable
    assert decision.p_value < 1e-4
    assert (
        decision.reasons[0] == "PASS MAE: model 9.5e-05 < zero baseline 0.0001 over 10000 test rows"
    )
    assert decision.reasons[1] == "PASS hit-rate: 0.5222 (4700 of 9000 directional calls) > 0.5"
    assert decision.reasons[2].startswith("PASS significance: one-sided binomial p = ")
    assert decision.reasons[2].endswith(" < 0.01")


def test_refused_when_mae_is_not_below_zeros() -> None:
    decision = Gate().decide(_model(1.0e-4, 4_700), ZERO)

    assert not decision.promotable
    assert decision.reasons[0].startswith("FAIL MAE: model 0.0001 >= zero baseline 0.0001")
    assert all(reason.startswith("PASS") for reason in decision.reasons[1:])


def test_refused_when_the_hit_rate_could_be_luck() -> None:
    decision = Gate().decide(_model(9.5e-5, 4_540), ZERO)  # 50.4 %, p ≈ 0.22

    assert not decision.promotable
    assert decision.reasons[1].startswith("PASS hit-rate: 0.5044")
    assert decision.reasons[2].startswith("FAIL significance")
    assert decision.p_value == pytest.approx(0.2, abs=0.05)


def test_refused_below_half() -> None:
    decision = Gate().decide(_model(9.5e-5, 4_400), ZERO)

    assert not decision.promotable
    assert decision.reasons[1].startswith("FAIL hit-rate: 0.4889 (4400 of 9000")
    assert decision.p_value > 0.9


def test_refused_without_any_call() -> None:
    decision = Gate().decide(ZERO, ZERO)

    assert not decision.promotable
    assert decision.p_value is None
    assert decision.reasons[-1] == "FAIL hit-rate: the model made no directional call on test"


def test_the_significance_level_is_a_parameter() -> None:
    model = _model(9.5e-5, 4_590)  # p ≈ 0.03

    assert not Gate().decide(model, ZERO).promotable
    assert Gate(max_p_value=0.05).decide(model, ZERO).promotable


def test_a_model_of_a_planted_signal_is_promotable() -> None:
    test = trained_outcome(10_000, seed=7, planted=True).test

    decision = Gate().decide(test["model"], test["zero"])

    assert decision.promotable, decision.reasons


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_a_model_of_pure_noise_is_refused(seed: int) -> None:
    test = trained_outcome(10_000, seed=seed, planted=False).test

    decision = Gate().decide(test["model"], test["zero"])

    assert not decision.promotable, decision.reasons
    assert decision.p_value > 0.01
