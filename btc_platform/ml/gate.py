"""The promotion gate: a model ships only if it beats the zero forecast on the test split."""

from __future__ import annotations

from dataclasses import dataclass

from btc_platform.ml.metrics import Metrics, binomial_p_value


@dataclass(frozen=True)
class GateDecision:
    """Whether to promote, every criterion's outcome with its numbers, and the hit-rate's
    one-sided binomial p-value (``None`` when the model made no directional call)."""

    promotable: bool
    reasons: list[str]
    p_value: float | None


@dataclass(frozen=True)
class Gate:
    """Promotable iff, on the test split, the model's MAE is below the zero baseline's AND
    its hit-rate is above 0.5 with one-sided binomial p-value below ``max_p_value``."""

    max_p_value: float = 0.01

    def decide(self, model: Metrics, zero: Metrics) -> GateDecision:
        """The decision from the model's and the zero baseline's test metrics."""
        reasons = []
        mae_passes = model.mae < zero.mae
        reasons.append(
            f"{_verdict(mae_passes)} MAE: model {model.mae:.6g} "
            f"{'<' if mae_passes else '>='} zero baseline {zero.mae:.6g} over {model.n} test rows"
        )
        if not model.n_directional or model.hit_rate is None:
            reasons.append("FAIL hit-rate: the model made no directional call on test")
            return GateDecision(False, reasons, None)
        p_value = binomial_p_value(model.hits, model.n_directional)
        above_half = model.hit_rate > 0.5
        reasons.append(
            f"{_verdict(above_half)} hit-rate: {model.hit_rate:.4f} "
            f"({model.hits} of {model.n_directional} directional calls) "
            f"{'>' if above_half else '<='} 0.5"
        )
        significant = p_value < self.max_p_value
        reasons.append(
            f"{_verdict(significant)} significance: one-sided binomial p = {p_value:.3g} "
            f"{'<' if significant else '>='} {self.max_p_value:g}"
        )
        return GateDecision(mae_passes and above_half and significant, reasons, p_value)


def _verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"
