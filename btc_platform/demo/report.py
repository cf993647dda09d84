"""What the demo prints: the live table's rows and the closing summary (pure formatting)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from realtime.inference.prediction import Prediction

BP = 1e4
"""Log returns are shown in basis points."""
US_PER_S = 1_000_000

TABLE_HEADER = (
    f"{'tick (UTC)':<12} {'second':<9} {'forecast':>9} {'latency':>9} "
    f"{'level':>5} {'age':>7}  {'model':<20} why not level 1"
)


def prediction_row(prediction: Prediction) -> str:
    """One line of the live table: when, from which second, what, how fast, how."""
    tick = _clock(prediction.tick_time_us)
    second = _clock(prediction.ts_sec * US_PER_S)[:8]
    yhat = prediction.yhat_log_return_10s
    forecast = "—" if yhat is None else f"{yhat * BP:+.2f}bp"
    return (
        f"{tick:<12} {second:<9} {forecast:>9} {prediction.latency_ms:>7.2f}ms "
        f"{prediction.fallback_level:>5} {prediction.feature_age_ms:>5}ms  "
        f"{_short(prediction.model_version) or '(none)':<20} "
        f"{'' if prediction.fallback_level == 1 else prediction.reason}"
    ).rstrip()


@dataclass(frozen=True)
class LiveSummary:
    """The live minute in numbers."""

    predictions: int
    skipped_ticks: int
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    levels: dict[int, int]
    model_versions: list[str]
    scored: int
    hit_rate: float | None
    mae_bp: float | None
    zero_mae_bp: float | None
    """The MAE of always forecasting zero over the same scored seconds."""
    parity_checked: int
    """Level-1 forecasts whose second the lake has complete features for."""
    parity_equal: int
    """Of those, forecasts equal, bit for bit, to the model's on the lake's features."""


def summarise_live(
    predictions: Sequence[Prediction],
    skipped_ticks: int,
    labels: dict[int, float],
    lake_forecasts: dict[int, float] | None = None,
) -> LiveSummary:
    """The numbers of the live run.

    ``labels``: the realised 10 s log return by second; ``lake_forecasts``: the served
    model's forecast by second from the lake's features. A level-1 prediction was made from
    the live vector of its second, so it must equal the lake's forecast exactly (the feature
    contract); other levels were made from repaired or remembered vectors and are not compared.
    """
    from btc_platform.ml.metrics import compute_metrics

    latencies = np.array([p.latency_ms for p in predictions], dtype=np.float64)
    p50 = p99 = None
    if len(latencies):
        p50, p99 = (float(v) for v in np.percentile(latencies, [50, 99]))
    pairs = [
        (p.yhat_log_return_10s, labels[p.ts_sec])
        for p in predictions
        if p.yhat_log_return_10s is not None and p.ts_sec in labels
    ]
    hit_rate = mae = zero_mae = None
    if pairs:
        yhat, y = (np.array(column, dtype=np.float64) for column in zip(*pairs, strict=True))
        metrics = compute_metrics(yhat, y)
        hit_rate, mae = metrics.hit_rate, metrics.mae * BP
        zero_mae = float(np.mean(np.abs(y))) * BP
    lake_forecasts = lake_forecasts or {}
    compared = [
        (p.yhat_log_return_10s, lake_forecasts[p.ts_sec])
        for p in predictions
        if p.fallback_level == 1 and p.ts_sec in lake_forecasts
    ]
    return LiveSummary(
        predictions=len(predictions),
        skipped_ticks=skipped_ticks,
        latency_p50_ms=p50,
        latency_p99_ms=p99,
        levels=dict(sorted(Counter(p.fallback_level for p in predictions).items())),
        model_versions=sorted({p.model_version for p in predictions if p.model_version}),
        scored=len(pairs),
        hit_rate=hit_rate,
        mae_bp=mae,
        zero_mae_bp=zero_mae,
        parity_checked=len(compared),
        parity_equal=sum(live == lake for live, lake in compared),
    )


def live_lines(
    summary: LiveSummary, cadence_ms: int, deadline_ms: int, test_hit_rate: float | None = None
) -> list[str]:
    """The summary's live part, one fact a line."""
    latency = (
        "none measured"
        if summary.latency_p50_ms is None
        else f"p50 {summary.latency_p50_ms:.2f} ms, p99 {summary.latency_p99_ms:.2f} ms "
        f"(deadline {deadline_ms} ms)"
    )
    levels = ", ".join(f"level {k}: {v}" for k, v in summary.levels.items()) or "none"
    if summary.hit_rate is None:
        quality = f"no directional call scored yet ({summary.scored} predictions labelled)"
    else:
        quality = (
            f"{summary.hit_rate:.1%} over {summary.scored} predictions with a realised label; "
            f"MAE {summary.mae_bp:.2f} bp against {summary.zero_mae_bp:.2f} bp for a zero "
            "forecast"
        )
        if test_hit_rate is not None:
            quality += f" (a minute is a small sample; on its test split: {test_hit_rate:.1%})"
    return [
        f"predictions     {summary.predictions} (one per {cadence_ms} ms tick), "
        f"{summary.skipped_ticks} ticks skipped past the deadline",
        f"tick latency    {latency}",
        f"fallback        {levels}",
        f"train = serve   {summary.parity_equal} of {summary.parity_checked} level-1 forecasts "
        "equal the model's forecast from the lake's features for the same second, bit for bit",
        f"hit rate        {quality}",
        f"model served    {', '.join(summary.model_versions) or '(none)'}",
    ]


def _clock(us: int) -> str:
    moment = dt.datetime.fromtimestamp(us / US_PER_S, dt.UTC)
    return moment.strftime("%H:%M:%S.%f")[:12]


def _short(version: str) -> str:
    return version if len(version) <= 20 else version[:19] + "…"
