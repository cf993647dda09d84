"""Synthetic ``gold.training_1s`` rows with a planted signal or none, and models trained on
them once per test session (training is the slow part, so tests share the results)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache

import numpy as np
import pyarrow as pa

from btc_platform.lakehouse.tables import GOLD_TRAINING_1S, RECORD_VERSION
from btc_platform.ml.baselines import Baselines
from btc_platform.ml.dataset import Splits, split_by_time, training_set_from_table
from btc_platform.ml.export import torch_outputs
from btc_platform.ml.metrics import Metrics, compute_metrics
from btc_platform.ml.train import TrainConfig, TrainedModel, train_mlp
from realtime.features.contract import CONTRACT_V1

START_SEC = 1_767_225_600  # 2026-01-01T00:00:00Z
SIGNAL_AMPLITUDE = 2e-4
"""Log-return effect of a fully one-sided 5 s flow during a burst; the noise's std is 1e-4."""
NOISE_STD = 1e-4
ZERO_LABEL_SHARE = 0.05
"""Share of labels exactly 0.0 (price unchanged after 10 s), as real BTCUSDT labels have."""
FAST = TrainConfig(max_epochs=40, patience=5)
"""Small enough for the unit tests; the planted signal is learnt well within it."""


def gold_rows(rows: int, seed: int, *, planted: bool, missing_share: float = 0.02) -> pa.Table:
    """``rows`` seconds (a share ``missing_share`` of the grid absent, as gold drops seconds
    whose features are undefined) in the gold table's schema.

    Planted: ``y = SIGNAL_AMPLITUDE · tvi_5s · burst_1s + noise``: flow predicts the return
    only during a burst, an interaction no linear model of the inputs can express. Otherwise
    ``y`` is noise independent of every feature.
    """
    rng = np.random.default_rng(seed)
    grid = START_SEC + np.arange(int(rows / (1 - missing_share)) + 1)
    ts_sec = np.sort(rng.choice(grid, size=rows, replace=False))

    log_price = np.log(98_000.0) + np.cumsum(rng.normal(0, 3e-5, rows + 5))
    price = np.exp(log_price)
    buy_1s, sell_1s = rng.exponential(0.5, rows), rng.exponential(0.5, rows)
    buy_5s, sell_5s = rng.exponential(2.5, rows), rng.exponential(2.5, rows)
    n_trades_1s = rng.poisson(20, rows).astype(np.float64)
    features = {
        "ret_1s": log_price[5:] - log_price[4:-1],
        "ret_2s": log_price[5:] - log_price[3:-2],
        "ret_5s": log_price[5:] - log_price[:-5],
        "vwap_5s_dev": rng.normal(0, 2e-5, rows),
        "n_trades_1s": n_trades_1s,
        "n_trades_5s": n_trades_1s + rng.poisson(80, rows),
        "buy_vol_1s": buy_1s,
        "sell_vol_1s": sell_1s,
        "tvi_1s": (buy_1s - sell_1s) / (buy_1s + sell_1s),
        "buy_vol_5s": buy_5s,
        "sell_vol_5s": sell_5s,
        "tvi_5s": (buy_5s - sell_5s) / (buy_5s + sell_5s),
        "avg_trade_size_1s": (buy_1s + sell_1s) / np.maximum(n_trades_1s, 1),
        "vol_ret_10s": np.abs(rng.normal(3e-5, 1e-5, rows)),
        "burst_1s": rng.integers(0, 2, rows).astype(np.float64),
        "large_trade_flag_5s": (rng.random(rows) < 0.1).astype(np.float64),
        "time_since_last_trade_ms": np.floor(rng.uniform(0, 1000, rows)),
        "last_price_minus_1s": price[5:] - price[4:-1],
        "last_price_minus_5s": price[5:] - price[:-5],
        "spread": np.full(rows, np.nan),  # trade-only history
    }
    labels = rng.normal(0, NOISE_STD, rows)
    if planted:
        labels += SIGNAL_AMPLITUDE * features["tvi_5s"] * features["burst_1s"]
    labels[rng.random(rows) < ZERO_LABEL_SHARE] = 0.0

    ts_us = ts_sec * 1_000_000
    columns = {
        "symbol": pa.array(["BTCUSDT"] * rows),
        "ts": pa.array(ts_us, pa.timestamp("us", tz="UTC")),
        "ts_sec": pa.array(ts_sec, pa.int64()),
        "contract_version": pa.array(np.full(rows, CONTRACT_V1.version, np.int32)),
        **{name: pa.array(features[name]) for name in CONTRACT_V1.names},
        CONTRACT_V1.label: pa.array(labels),
        "source": pa.array(["synthetic"] * rows),
        "ingest_ts": pa.array(ts_us + 60_000_000, pa.timestamp("us", tz="UTC")),
        "version": pa.array(np.full(rows, RECORD_VERSION, np.int32)),
    }
    return pa.table(columns).cast(GOLD_TRAINING_1S.schema)


@dataclass(frozen=True)
class Outcome:
    """A trained model and the test metrics of it and of each baseline."""

    splits: Splits
    trained: TrainedModel
    test: dict[str, Metrics]
    test_predictions: np.ndarray


@cache
def trained_outcome(rows: int, seed: int, planted: bool) -> Outcome:
    """Train on synthetic rows with ``FAST`` (same seed for data and training); cached."""
    splits = split_by_time(training_set_from_table(gold_rows(rows, seed, planted=planted)))
    trained = train_mlp(splits, replace(FAST, seed=seed))
    predictions = torch_outputs(trained.model, splits.test.features)
    baselines = Baselines.fit(splits.train, trained.scaler)
    test = {
        name: compute_metrics(yhat, splits.test.labels)
        for name, yhat in baselines.predictions(splits.test.features).items()
    }
    test["model"] = compute_metrics(predictions, splits.test.labels)
    return Outcome(splits, trained, test, predictions)
