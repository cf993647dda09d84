"""The quality numbers of live predictions, by hand on a few rows."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

pytest.importorskip("pyiceberg", reason="the batch extra is not installed")

from btc_platform.defs.live.quality import (
    Scored,
    groups_markdown,
    join_labels,
    quality_by,
    quality_of,
    quality_windows,
    windows_markdown,
)
from btc_platform_tests.realtime.archive.events import SYMBOL
from realtime.archive.rows import predictions_batch
from realtime.inference.prediction import Prediction

T0 = 1_767_225_600  # 2026-01-01T00:00Z
LABEL = "y_log_return_10s"


def _prediction(ts_sec, yhat, level=1, model="m1", tick_offset_s=1) -> Prediction:
    tick_us = (ts_sec + tick_offset_s) * 1_000_000
    return Prediction(SYMBOL, ts_sec, yhat, 1.0, model, level, 500, "r", tick_us)


PREDICTIONS = [
    _prediction(T0 + 10, 0.002),  # label +0.001: hit, error 0.001
    _prediction(T0 + 11, -0.001),  # label +0.003: miss, error 0.004
    _prediction(T0 + 12, 0.0),  # label -0.002: no call, error 0.002
    _prediction(T0 + 13, 0.001, level=2),  # label 0: no call, error 0.001
    _prediction(T0 + 14, None, level=5, model=""),  # safe mode: labelled, not scored
    _prediction(T0 + 15, 0.004, model="m2"),  # no label
    _prediction(T0 + 400, -0.002, model="m2", level=3),  # label -0.001: hit, error 0.001
]
LABELS = pa.table(
    {
        "ts_sec": [T0 + 400, T0 + 10, T0 + 11, T0 + 12, T0 + 13, T0 + 14],
        LABEL: [-0.001, 0.001, 0.003, -0.002, 0.0, 0.005],
    }
)


@pytest.fixture
def scored() -> Scored:
    return join_labels(pa.Table.from_batches([predictions_batch(PREDICTIONS)]), LABELS, LABEL)


def test_labels_are_joined_on_the_exact_second(scored):
    np.testing.assert_array_equal(scored.y, [0.001, 0.003, -0.002, 0.0, 0.005, np.nan, -0.001])
    assert scored.labelled.tolist() == [True, True, True, True, True, False, True]
    assert scored.scored.tolist() == [True, True, True, True, False, False, True]


def test_the_day_s_numbers_equal_a_hand_computation(scored):
    day = quality_of(scored, np.ones(7, dtype=bool))
    assert (day.n, day.n_labelled, day.n_scored) == (7, 6, 5)
    assert day.mae == pytest.approx((0.001 + 0.004 + 0.002 + 0.001 + 0.001) / 5, rel=1e-12)
    # Calls on nonzero labels: rows 1, 2 and 7 (row 3 forecasts 0, row 4's label is 0).
    assert (day.n_directional, day.hits, day.hit_rate) == (3, 2, 2 / 3)


def test_windows_are_five_minutes_of_tick_time(scored):
    windows = quality_windows(scored, symbol=SYMBOL, ingest_ts_us=0).to_pylist()
    assert [w["window_start"].timestamp() - T0 for w in windows] == [0, 300]
    first, second = windows
    assert (first["n_predictions"], first["n_labelled"], first["n_scored"]) == (6, 5, 4)
    assert first["mae"] == pytest.approx(0.008 / 4, rel=1e-12)
    assert (first["n_directional"], first["hits"], first["hit_rate"]) == (2, 1, 0.5)
    assert first["share_level_1"] == pytest.approx(4 / 6)
    assert first["share_level_2"] == first["share_level_5"] == pytest.approx(1 / 6)
    assert first["share_level_3"] == first["share_level_4"] == 0.0
    assert (second["n_predictions"], second["mae"], second["hit_rate"]) == (1, 0.001, 1.0)
    assert second["share_level_3"] == 1.0


def test_a_window_without_a_scored_prediction_has_no_mae_or_hit_rate():
    lone = pa.Table.from_batches([predictions_batch([_prediction(T0, None, level=5)])])
    scored = join_labels(lone, LABELS.slice(0, 0), LABEL)
    (window,) = quality_windows(scored, symbol=SYMBOL, ingest_ts_us=0).to_pylist()
    assert (window["n_predictions"], window["n_scored"], window["mae"]) == (1, 0, None)
    assert window["hit_rate"] is None
    assert window["share_level_5"] == 1.0


def test_groups_and_windows_read_as_markdown_tables(scored):
    by_model = quality_by(scored, scored.model_version)
    assert list(by_model) == ["", "m1", "m2"]
    assert by_model["m2"].n_scored == 1
    text = groups_markdown("model version", by_model, 7, name=lambda v: v or "(no model)")
    lines = text.splitlines()
    assert lines[0] == "| model version | n | share | labelled | scored | MAE | hit rate |"
    assert lines[2].startswith("| (no model) | 1 | 14.3 % | 1 | 0 | – | – |")
    windows = windows_markdown(quality_windows(scored, symbol=SYMBOL, ingest_ts_us=0))
    assert "| 00:00–00:05 | 6 | 5 | 4 | 0.002 | 0.5 |" in windows
    assert not math.isnan(by_model["m1"].mae)
