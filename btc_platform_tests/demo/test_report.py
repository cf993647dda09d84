"""The demo's live table and summary: numbers computed right, and rows that say why."""

from __future__ import annotations

import pytest

from btc_platform.demo.lake import day_keys, hour_keys
from btc_platform.demo.report import TABLE_HEADER, prediction_row, summarise_live
from realtime.inference.prediction import Prediction

T0 = 1_767_247_200  # 2026-01-01T06:00:00Z


def prediction(ts: int, yhat: float | None, *, level: int = 1, latency: float = 1.0) -> Prediction:
    return Prediction(
        symbol="BTCUSDT",
        ts_sec=ts,
        yhat_log_return_10s=yhat,
        latency_ms=latency,
        model_version="20261121T204756Z-9b302e3c" if yhat is not None else "",
        fallback_level=level,
        feature_age_ms=750,
        reason="fresh" if level == 1 else "safe mode: no model",
        tick_time_us=(ts + 2) * 1_000_000,
    )


def test_the_summary_scores_only_forecasts_with_a_realised_label():
    predictions = [
        prediction(T0, 2e-4, latency=1.0),  # up, realised up: hit
        prediction(T0 + 1, -1e-4, latency=2.0),  # down, realised up: miss
        prediction(T0 + 2, -3e-4, latency=3.0),  # down, realised down: hit
        prediction(T0 + 3, None, level=5, latency=4.0),  # safe mode: not scored
        prediction(T0 + 4, 1e-4, latency=5.0),  # no label yet: not scored
    ]
    labels = {T0: 1e-4, T0 + 1: 2e-4, T0 + 2: -1e-4, T0 + 3: 5e-4}
    summary = summarise_live(predictions, skipped_ticks=1, labels=labels)
    assert summary.predictions == 5
    assert summary.skipped_ticks == 1
    assert summary.scored == 3
    assert summary.hit_rate == pytest.approx(2 / 3)
    # |2-1| + |-1-2| + |-3+1| = 6 bp over 3; a zero forecast: (1 + 2 + 1) / 3 bp.
    assert summary.mae_bp == pytest.approx(2.0)
    assert summary.zero_mae_bp == pytest.approx(4 / 3)
    assert summary.latency_p50_ms == pytest.approx(3.0)
    assert summary.levels == {1: 4, 5: 1}
    assert summary.model_versions == ["20261121T204756Z-9b302e3c"]


def test_parity_compares_level_1_forecasts_with_the_lakes_exactly():
    predictions = [
        prediction(T0, 2e-4),
        prediction(T0 + 1, -1e-4),
        prediction(T0 + 2, 3e-4, level=2),  # repaired vector: not compared
        prediction(T0 + 3, 1e-4),  # no lake features: not compared
    ]
    lake = {T0: 2e-4, T0 + 1: -1e-4 + 1e-19, T0 + 2: 0.0}
    summary = summarise_live(predictions, 0, {}, lake)
    assert (summary.parity_checked, summary.parity_equal) == (2, 1)  # one ulp apart is unequal


def test_an_empty_run_has_no_numbers_rather_than_wrong_ones():
    summary = summarise_live([], skipped_ticks=0, labels={})
    assert (summary.latency_p50_ms, summary.hit_rate, summary.scored) == (None, None, 0)


def test_a_row_shows_the_reason_only_when_the_prediction_fell_back():
    fresh = prediction_row(prediction(T0, 1.5e-4))
    assert fresh.startswith("06:00:02.000 06:00:00")
    assert "+1.50bp" in fresh
    assert "fresh" not in fresh
    safe = prediction_row(prediction(T0, None, level=5))
    assert "—" in safe
    assert safe.endswith("safe mode: no model")
    assert "(none)" in safe
    assert len(TABLE_HEADER.split()) >= 7


def test_partition_keys_cover_exactly_the_hours_and_days_touched():
    start_us, end_us = T0 * 1_000_000, (T0 + 3600 + 60) * 1_000_000
    assert hour_keys(start_us, end_us) == ("2026-01-01-06:00", "2026-01-01-07:00")
    assert hour_keys(start_us, (T0 + 3600) * 1_000_000) == ("2026-01-01-06:00",) * 2
    assert day_keys(start_us, (T0 + 86_400) * 1_000_000) == ["2026-01-01", "2026-01-02"]
