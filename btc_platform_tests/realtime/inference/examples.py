"""A valid contract-v1 manifest for tests, and the defects a loader must refuse."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np

from realtime.features.contract import CONTRACT_V1
from realtime.inference.manifest import BundleManifest, bundle_version

K = len(CONTRACT_V1.model_inputs)
TRAINED_AT = datetime(2026, 1, 2, tzinfo=UTC)
PLACEHOLDER_SHA256 = "1a2b3c4d" + "0" * 56


def example_manifest(**overrides: Any) -> BundleManifest:
    """A manifest as the batch side would build it; ``overrides`` replace constructor arguments."""
    rng = np.random.default_rng(11)
    fields: dict[str, Any] = {
        "version": bundle_version(TRAINED_AT, PLACEHOLDER_SHA256),
        "symbol": "BTCUSDT",
        "created_at": "2026-01-02T00:05:12Z",
        "contract_version": 1,
        "input_names": CONTRACT_V1.model_inputs,
        "label": CONTRACT_V1.label,
        "scaler_mean": rng.normal(size=K),
        "scaler_scale": rng.uniform(0.5, 2.0, size=K),
        "architecture": {"kind": "mlp", "layers": [K, 8, 1], "activation": "relu", "seed": 7},
        "training": {"epochs": 3, "best_epoch": 2, "rows": {"train": 80, "validation": 10}},
        "lineage": {"tables": {"gold.training_1s": 123456789}},
        "metrics": {"test": {"model": {"mae": 0.0002, "n": np.int64(10)}}},
        "gate": {"promotable": True, "reasons": [], "binomial_p_value": np.float64(0.001)},
        "golden_inputs": rng.normal(size=(3, K)).astype(np.float32),
        "golden_outputs": [0.0001, -0.0002, 0.0],
        "golden_tolerance": 1e-6,
        "onnx_sha256": PLACEHOLDER_SHA256,
    }
    fields.update(overrides)
    return BundleManifest(**fields)


Defect = tuple[str, Callable[[dict[str, Any]], None], str]


def _set(path: str, value: object) -> Callable[[dict[str, Any]], None]:
    *parents, last = path.split(".")

    def mutate(document: dict[str, Any]) -> None:
        target = document
        for parent in parents:
            target = target[parent]
        target[last] = value

    return mutate


def _delete(path: str) -> Callable[[dict[str, Any]], None]:
    *parents, last = path.split(".")

    def mutate(document: dict[str, Any]) -> None:
        target = document
        for parent in parents:
            target = target[parent]
        del target[last]

    return mutate


def _edit(path: str, change: Callable[[Any], Any]) -> Callable[[dict[str, Any]], None]:
    *parents, last = path.split(".")

    def mutate(document: dict[str, Any]) -> None:
        target = document
        for parent in parents:
            target = target[parent]
        target[last] = change(target[last])

    return mutate


def _swap_first_two(names: list[str]) -> list[str]:
    return [names[1], names[0], *names[2:]]


def _with(index: int, value: object) -> Callable[[list[Any]], list[Any]]:
    return lambda values: [*values[:index], value, *values[index + 1 :]]


INPUTS = "feature_contract.inputs"

MANIFEST_DEFECTS: list[Defect] = [
    ("wrong format", _set("format", "pickle"), "format"),
    ("future format version", _set("format_version", 2), "format_version"),
    ("unknown contract", _set("feature_contract.version", 99), "feature_contract.version"),
    ("inputs reordered", _edit(INPUTS, _swap_first_two), INPUTS),
    ("input dropped", _edit(INPUTS, lambda names: names[:-1]), INPUTS),
    ("spread as input", _edit(INPUTS, lambda names: [*names, "spread"]), INPUTS),
    ("wrong label", _set("feature_contract.label", "y_log_return_5s"), "feature_contract.label"),
    ("short mean", _edit("scaler.mean", lambda m: m[:-1]), "scaler.mean"),
    ("long scale", _edit("scaler.scale", lambda s: [*s, 1.0]), "scaler.scale"),
    ("zero scale", _edit("scaler.scale", _with(3, 0.0)), "scaler.scale[3]"),
    ("negative scale", _edit("scaler.scale", _with(0, -1.0)), "scaler.scale[0]"),
    ("text mean", _edit("scaler.mean", _with(2, "0.5")), "scaler.mean[2]"),
    ("missing golden", _delete("golden"), "golden"),
    ("missing scale", _delete("scaler.scale"), "scaler.scale"),
    ("missing metrics", _delete("metrics"), "metrics"),
    ("unknown field", _set("pickle_path", "model.pkl"), "pickle_path"),
    ("sha not hex", _set("onnx_sha256", "z" * 64), "onnx_sha256"),
    ("empty sha", _set("onnx_sha256", ""), "onnx_sha256"),
    ("version of another sha", _set("version", "20260102T000000Z-ffffffff"), "version"),
    ("version not compact ISO", _set("version", "2026-01-02-1a2b3c4d"), "version"),
    ("narrow golden row", _edit("golden.inputs", lambda rows: [rows[0][:-1], *rows[1:]]),
     "golden.inputs[0]"),
    ("golden input not float32", _edit("golden.inputs", lambda rows: [[0.1] * K, *rows[1:]]),
     "golden.inputs[0][0]"),
    ("golden outputs short", _edit("golden.outputs", lambda o: o[:-1]), "golden.outputs"),
    ("no golden rows", _set("golden.inputs", []), "golden.inputs"),
    ("zero tolerance", _set("golden.tolerance", 0.0), "golden.tolerance"),
    ("gate not an object", _set("gate", ["promotable"]), "gate"),
    ("created_at not UTC", _set("created_at", "2026-01-02T00:05:12+01:00"), "created_at"),
]  # fmt: skip

TEXT_DEFECTS: list[tuple[str, bytes]] = [
    ("truncated", b'{"format": "btc-platform-model-bundle", "format_vers'),
    ("NaN", b'{"format": NaN}'),
    ("not an object", b"[1, 2, 3]"),
    ("not UTF-8", b'{"format": "\xff"}'),
    ("empty file", b""),
]
"""Whole-document defects; all raise ``ManifestInvalid`` with field ``DOCUMENT``."""
