"""One training run end to end, as pure computation: a training set in, a model bundle
(ONNX bytes + manifest) and its evidence out.

Time split → scaler and MLP fitted on train → early stopping on validation → the test split
scored against the baselines → the gate → ONNX export with the scaler folded in → golden
vectors from the test split. The Dagster asset does the I/O around it.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import asdict, dataclass

import numpy as np

from btc_platform.ml.baselines import Baselines
from btc_platform.ml.dataset import Splits, TrainingSet, split_by_time
from btc_platform.ml.export import (
    export_onnx,
    max_abs_difference,
    onnx_outputs,
    onnx_session,
    torch_outputs,
)
from btc_platform.ml.gate import Gate, GateDecision
from btc_platform.ml.metrics import Metrics, compute_metrics, hit_rate_by_decile
from btc_platform.ml.model import layer_sizes
from btc_platform.ml.train import TrainConfig, TrainedModel, WarmStart, train_mlp
from realtime.features.contract import CONTRACT_V1
from realtime.inference.bundle import sha256_hex
from realtime.inference.manifest import BundleManifest, bundle_version

GOLDEN_ROWS = 16
GOLDEN_TOLERANCE = 1e-6
LATENCY_CALLS = 2_000
SPLITS = ("validation", "test")


@dataclass(frozen=True)
class Candidate:
    """A trained model as a bundle, with everything that judges it."""

    manifest: BundleManifest
    onnx_bytes: bytes
    trained: TrainedModel
    splits: Splits
    metrics: dict[str, dict[str, Metrics]]
    """split → predictor (model, zero, momentum, linear) → metrics."""
    gate: GateDecision
    onnx_torch_max_difference: float
    """Over the golden vectors, float32 torch against onnxruntime."""
    latency_ms: dict[str, float]
    """Single-row onnxruntime latency, p50 and p99 over ``LATENCY_CALLS`` calls."""
    deciles: list[dict]
    test_predictions: np.ndarray


def train_candidate(
    training_set: TrainingSet,
    *,
    symbol: str,
    lineage: dict,
    now: dt.datetime,
    config: TrainConfig | None = None,
    gate: Gate | None = None,
    warm_start: WarmStart | None = None,
    base_version: str | None = None,
) -> Candidate:
    """Train, score, judge and export one candidate (a full training, or with
    ``warm_start`` the incremental refit of a base model's output layer)."""
    config = config or TrainConfig()
    splits = split_by_time(training_set)
    trained = train_mlp(splits, config, warm_start=warm_start)
    baselines = Baselines.fit(splits.train, trained.scaler)
    metrics: dict[str, dict[str, Metrics]] = {}
    predictions: dict[str, np.ndarray] = {}
    for name in SPLITS:
        split: TrainingSet = getattr(splits, name)
        predictions[name] = torch_outputs(trained.model, split.features).astype(np.float64)
        metrics[name] = {"model": compute_metrics(predictions[name], split.labels)}
        for baseline, values in baselines.predictions(split.features).items():
            metrics[name][baseline] = compute_metrics(values, split.labels)
    decision = (gate or Gate()).decide(metrics["test"]["model"], metrics["test"]["zero"])

    onnx_bytes = export_onnx(trained.model, training_set.features.shape[1])
    # Golden vectors: test rows as float32, the dtype the service feeds the model.
    golden = splits.test.features[:GOLDEN_ROWS].astype(np.float32)
    golden_out = torch_outputs(trained.model, golden)
    difference = max_abs_difference(onnx_outputs(onnx_bytes, golden), golden_out)

    manifest = BundleManifest(
        version=bundle_version(now, sha256_hex(onnx_bytes)),
        symbol=symbol.upper(),
        created_at=now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        contract_version=CONTRACT_V1.version,
        input_names=CONTRACT_V1.model_inputs,
        label=CONTRACT_V1.label,
        # The float32 values the graph subtracts and divides by, not the float64 fit.
        scaler_mean=tuple(float(v) for v in trained.model.mean.numpy()),
        scaler_scale=tuple(float(v) for v in trained.model.scale.numpy()),
        architecture={
            "kind": "mlp",
            "layers": layer_sizes(training_set.features.shape[1]),
            "activation": "relu",
            "dropout": 0.1,
            "loss": "huber",
            "huber_delta_label_std": config.huber_delta,
            "label_scale": trained.label_scale,
            "seed": config.seed,
            "training": "full" if warm_start is None else "incremental",
            "base_version": base_version,
            "trained_parameters": "all" if warm_start is None else warm_start.trainable_prefix,
        },
        training={
            "epochs": trained.epochs,
            "best_epoch": trained.best_epoch,
            "best_validation_loss": trained.best_validation_loss,
            "rows": {name: len(getattr(splits, name)) for name in ("train", *SPLITS)},
            "purged_rows": splits.purged_rows,
            "dropped_rows": training_set.dropped_rows,
            "config": asdict(config),
        },
        lineage={**lineage, "splits": _split_ranges(splits)},
        metrics={
            split: {name: asdict(m) for name, m in by_name.items()}
            for split, by_name in metrics.items()
        },
        gate={
            "promotable": decision.promotable,
            "reasons": decision.reasons,
            "binomial_p_value": decision.p_value,
        },
        golden_inputs=tuple(tuple(float(v) for v in row) for row in golden),
        golden_outputs=tuple(float(v) for v in golden_out),
        golden_tolerance=GOLDEN_TOLERANCE,
    )
    return Candidate(
        manifest=manifest,
        onnx_bytes=onnx_bytes,
        trained=trained,
        splits=splits,
        metrics=metrics,
        gate=decision,
        onnx_torch_max_difference=difference,
        latency_ms=single_row_latency_ms(onnx_bytes, golden),
        deciles=hit_rate_by_decile(predictions["test"], splits.test.labels),
        test_predictions=predictions["test"],
    )


def single_row_latency_ms(onnx_bytes: bytes, rows: np.ndarray) -> dict[str, float]:
    """p50 and p99 of one-row onnxruntime calls, as the service makes them (1 thread)."""
    session = onnx_session(onnx_bytes)
    inputs = [{"features": rows[i % len(rows)][None, :]} for i in range(LATENCY_CALLS)]
    for feed in inputs[:100]:  # warm-up: first calls allocate
        session.run(["yhat"], feed)
    durations = np.empty(LATENCY_CALLS)
    for i, feed in enumerate(inputs):
        started = time.perf_counter()
        session.run(["yhat"], feed)
        durations[i] = time.perf_counter() - started
    return {
        "p50": float(np.percentile(durations, 50) * 1e3),
        "p99": float(np.percentile(durations, 99) * 1e3),
    }


def _split_ranges(splits: Splits) -> dict[str, list[str]]:
    def iso(second: int) -> str:
        return dt.datetime.fromtimestamp(second, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    return {name: [iso(t) for t in getattr(splits, name).time_range] for name in ("train", *SPLITS)}
