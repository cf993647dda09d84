"""ONNX export of the scaled model, and the outputs of torch and onnxruntime for comparison.

Export uses torch's TorchScript-based exporter (``dynamo=False``): in torch 2.13 the default
torch.export-based exporter needs ``onnxscript``, which this project does not install, and
the graph here (Sub, Div, Gemm, Relu, Mul) is one the TorchScript path exports exactly.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import onnxruntime
import torch

from btc_platform.ml.model import ScaledModel

OPSET = 17
INPUT_NAME = "features"
OUTPUT_NAME = "yhat"


def export_onnx(model: ScaledModel, k: int) -> bytes:
    """The serialised ONNX model: input ``features`` float32 [N, K] (N dynamic, raw
    features), output ``yhat`` float32 [N, 1]; opset 17. ``model`` must be in eval mode."""
    if model.training:
        raise ValueError("export a model in eval mode: dropout must be off")
    example = torch.zeros((2, k), dtype=torch.float32)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter announces its deprecation on every call; see the module doc.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx")
        warnings.filterwarnings("ignore", "You are using the legacy TorchScript-based ONNX")
        torch.onnx.export(
            model,
            (example,),
            buffer,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            opset_version=OPSET,
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            dynamo=False,
            do_constant_folding=True,
        )
    return buffer.getvalue()


def torch_outputs(model: ScaledModel, features: np.ndarray) -> np.ndarray:
    """The model's predictions for raw ``features`` [N, K] as float32 [N]."""
    if model.training:
        raise ValueError("outputs of a model in training mode are random (dropout)")
    with torch.inference_mode():
        values = model(torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)))
    return values.numpy().reshape(-1)


def onnx_session(onnx_bytes: bytes) -> onnxruntime.InferenceSession:
    """A CPU session on one thread, as the realtime service runs it."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(
        onnx_bytes, sess_options=options, providers=["CPUExecutionProvider"]
    )


def onnx_outputs(onnx_bytes: bytes, features: np.ndarray) -> np.ndarray:
    """The ONNX model's predictions for raw ``features`` [N, K] as float32 [N]."""
    session = onnx_session(onnx_bytes)
    inputs = {INPUT_NAME: np.ascontiguousarray(features, dtype=np.float32)}
    (values,) = session.run([OUTPUT_NAME], inputs)
    return np.asarray(values).reshape(-1)


def max_abs_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Largest ``|a - b|`` over same-shaped arrays, in float64; 0.0 when empty."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} and {b.shape}")
    return float(np.max(np.abs(a - b))) if a.size else 0.0
