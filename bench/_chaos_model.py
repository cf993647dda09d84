"""A model store for the chaos bench: verified bundles built with ``onnx.helper`` (no torch).

Three kinds of bundle, each passing every check ``load_bundle`` makes (manifest, checksum,
signature, golden rows): a scaled linear model (the one that serves), the same retrained
(to be corrupted on disk after it was written), and one that raises inside onnxruntime on
any live row while reproducing its golden rows exactly, the model error a service must
survive. Golden outputs are onnxruntime's own for the golden rows.
"""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from realtime.features.contract import CONTRACT_V1
from realtime.inference.bundle import MODEL_FILE, sha256_hex, write_bundle
from realtime.inference.manifest import BundleManifest, bundle_version
from realtime.inference.pointer import ModelPointer
from realtime.inference.store import POINTER_FILE

K = len(CONTRACT_V1.model_inputs)
TRAINED_AT = datetime(2026, 1, 2, tzinfo=UTC)
TRAP_VALUE = 0.123456789
"""Column 0 of every golden row of the trap model; a live ``ret_1s`` is never exactly this."""


def _graph(bias: float, *, trap: bool) -> tuple[bytes, np.ndarray, np.ndarray]:
    """``yhat = ((x - mean) / scale) @ w + bias``; with ``trap`` a Gather whose index is 1
    (out of bounds) for any row whose column 0 is not ``TRAP_VALUE``."""
    rng = np.random.default_rng(7)
    mean = rng.normal(size=K).astype(np.float32)
    scale = rng.uniform(0.5, 2.0, size=K).astype(np.float32)
    weights = rng.normal(0.0, 0.001, size=(K, 1)).astype(np.float32)
    tensors = {
        "mean": mean,
        "scale": scale,
        "weights": weights,
        "bias": np.array([bias], dtype=np.float32),
    }
    nodes = [
        helper.make_node("Sub", ["features", "mean"], ["centred"]),
        helper.make_node("Div", ["centred", "scale"], ["scaled"]),
        helper.make_node("MatMul", ["scaled", "weights"], ["linear"]),
    ]
    if trap:
        tensors |= {
            "starts": np.array([0], dtype=np.int64),
            "ends": np.array([1], dtype=np.int64),
            "axes": np.array([1], dtype=np.int64),
            "trap": np.array([TRAP_VALUE], dtype=np.float32),
            "zero": np.array([0.0], dtype=np.float32),
            "pick_from": np.array([0.0], dtype=np.float32),
        }
        nodes += [
            helper.make_node("Slice", ["features", "starts", "ends", "axes"], ["first"]),
            helper.make_node("Sub", ["first", "trap"], ["off"]),
            helper.make_node("Abs", ["off"], ["distance"]),
            helper.make_node("Greater", ["distance", "zero"], ["live"]),
            helper.make_node("Cast", ["live"], ["index"], to=TensorProto.INT64),
            helper.make_node("Gather", ["pick_from", "index"], ["picked"], axis=0),
            helper.make_node("Add", ["linear", "picked"], ["trapped"]),
            helper.make_node("Add", ["trapped", "bias"], ["yhat"]),
        ]
    else:
        nodes.append(helper.make_node("Add", ["linear", "bias"], ["yhat"]))
    graph = helper.make_graph(
        nodes,
        "chaos_linear",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", K])],
        [helper.make_tensor_value_info("yhat", TensorProto.FLOAT, ["N", 1])],
        [numpy_helper.from_array(value, name) for name, value in tensors.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString(), mean, scale


def add_version(root: Path, day: int, bias: float, *, trap: bool = False) -> str:
    """Write one verified bundle of ``SYMBOL`` under ``root``; its version."""
    onnx_bytes, mean, scale = _graph(bias, trap=trap)
    golden = np.random.default_rng(day).normal(size=(3, K)).astype(np.float32)
    if trap:
        golden[:, 0] = np.float32(TRAP_VALUE)
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    (outputs,) = session.run(["yhat"], {"features": golden})
    trained_at = TRAINED_AT + timedelta(days=day)
    version = bundle_version(trained_at, sha256_hex(onnx_bytes))
    manifest = BundleManifest(
        version=version,
        symbol="BTCUSDT",
        created_at=trained_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        contract_version=CONTRACT_V1.version,
        input_names=CONTRACT_V1.model_inputs,
        label=CONTRACT_V1.label,
        scaler_mean=mean,
        scaler_scale=scale,
        architecture={"kind": "linear", "trap": trap},
        training={"note": "chaos bench, not trained"},
        lineage={},
        metrics={},
        gate={"promotable": True, "reasons": []},
        golden_inputs=golden,
        golden_outputs=outputs[:, 0].astype(np.float64).tolist(),
        golden_tolerance=1e-6,
    )
    write_bundle(root / "BTCUSDT" / version, onnx_bytes, manifest)
    return version


def flip_a_byte(root: Path, version: str) -> None:
    """Damage a stored bundle's model as a bad disk or a partial upload would."""
    path = root / "BTCUSDT" / version / MODEL_FILE
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def point_to(root: Path, production: str, previous: tuple[str, ...] = ()) -> None:
    """Move production to ``production`` as the batch side's promotion does."""
    pointer = ModelPointer("BTCUSDT", production=production, previous=previous)
    write_pointer_bytes(root, pointer.to_json().encode())


def write_pointer_bytes(root: Path, content: bytes) -> None:
    """Replace the pointer file at once (temporary file and rename)."""
    folder = root / "BTCUSDT"
    folder.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=".pointer.")
    with os.fdopen(descriptor, "wb") as file:
        file.write(content)
    os.replace(temporary, folder / POINTER_FILE)
