"""The Markdown summaries shown in the Dagster UI."""

from __future__ import annotations

import numpy as np

from btc_platform.ml.metrics import hit_rate_by_decile
from btc_platform.ml.plots import hit_rate_by_decile_markdown, predicted_vs_realised_markdown


def test_predicted_vs_realised_bins_rise_with_a_good_model() -> None:
    rng = np.random.default_rng(1)
    yhat = rng.normal(0, 1e-4, 1_000)
    y = yhat + rng.normal(0, 2e-5, 1_000)

    lines = predicted_vs_realised_markdown(yhat, y).splitlines()

    assert lines[0] == "| bin | rows | mean predicted (bp) | mean realised (bp) |"
    body = [line.strip("|").split("|") for line in lines[2:]]
    assert [int(cells[1]) for cells in body] == [100] * 10
    realised = [float(cells[3]) for cells in body]
    assert realised == sorted(realised)


def test_hit_rate_table_has_a_bar_per_decile_and_na_without_calls() -> None:
    deciles = [
        {"decile": 1, "n": 10, "n_directional": 0, "hit_rate": None, "mean_abs_yhat": 0.0},
        {"decile": 2, "n": 10, "n_directional": 10, "hit_rate": 0.5, "mean_abs_yhat": 1e-4},
        {"decile": 3, "n": 10, "n_directional": 10, "hit_rate": 1.0, "mean_abs_yhat": 2e-4},
    ]

    lines = hit_rate_by_decile_markdown(deciles).splitlines()

    assert len(lines) == 2 + 3
    assert lines[2] == "| 1 | 0.000 | 0 | n/a | `` |"
    assert lines[3] == "| 2 | 1.000 | 10 | 0.500 | `" + "█" * 10 + "` |"
    assert lines[4].endswith("`" + "█" * 20 + "` |")


def test_tables_from_real_deciles() -> None:
    rng = np.random.default_rng(2)
    yhat, y = rng.normal(0, 1e-4, 500), rng.normal(0, 1e-4, 500)

    assert len(hit_rate_by_decile_markdown(hit_rate_by_decile(yhat, y)).splitlines()) == 12
