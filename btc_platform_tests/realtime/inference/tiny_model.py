"""A tiny scaler + MLP ONNX graph built with ``onnx.helper`` (no torch), and its numpy twin.

The graph has the bundle format's shape: ``features`` float32 [N, K] unscaled, then
``(x - mean) / scale``, a ReLU hidden layer, and ``yhat`` float32 [N, 1]. Keyword arguments
of ``TinyModel.onnx_bytes`` break one part of that signature at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HIDDEN = 8


@dataclass(frozen=True)
class TinyModel:
    """Weights in float32, as an exported torch model holds them."""

    mean: np.ndarray
    scale: np.ndarray
    hidden_weights: np.ndarray
    hidden_bias: np.ndarray
    output_weights: np.ndarray
    output_bias: np.ndarray

    @property
    def width(self) -> int:
        return self.mean.shape[0]

    def reference(self, features: np.ndarray) -> np.ndarray:
        """The graph's maths in numpy float64 on float32-rounded inputs: float64 [N]."""
        rows = np.asarray(features, dtype=np.float32).astype(np.float64)
        scaled = (rows - self.mean) / self.scale
        hidden = np.maximum(scaled @ self.hidden_weights + self.hidden_bias, 0.0)
        return (hidden @ self.output_weights + self.output_bias)[:, 0]

    def sample(self, rows: int, seed: int) -> np.ndarray:
        """Raw float32 feature rows around the scaler's centre, like real ones."""
        rng = np.random.default_rng(seed)
        noise = rng.normal(size=(rows, self.width)).astype(np.float32)
        return (self.mean + noise * self.scale).astype(np.float32)

    def with_output_bias(self, bias: float) -> TinyModel:
        """The same model retrained: one weight moved."""
        return TinyModel(
            self.mean,
            self.scale,
            self.hidden_weights,
            self.hidden_bias,
            self.output_weights,
            np.array([bias], dtype=np.float32),
        )

    def onnx_bytes(
        self,
        *,
        input_name: str = "features",
        output_name: str = "yhat",
        batch: str | int = "N",
        input_type: int = TensorProto.FLOAT,
    ) -> bytes:
        """The serialised opset-17 graph; defaults follow docs/model_bundle.md."""
        initializers = [
            numpy_helper.from_array(array.astype(np.float32), name)
            for name, array in (
                ("mean", self.mean),
                ("scale", self.scale),
                ("hidden_weights", self.hidden_weights),
                ("hidden_bias", self.hidden_bias),
                ("output_weights", self.output_weights),
                ("output_bias", self.output_bias),
            )
        ]
        nodes = []
        raw = input_name
        if input_type != TensorProto.FLOAT:
            nodes.append(helper.make_node("Cast", [input_name], ["raw"], to=TensorProto.FLOAT))
            raw = "raw"
        nodes += [
            helper.make_node("Sub", [raw, "mean"], ["centred"]),
            helper.make_node("Div", ["centred", "scale"], ["scaled"]),
            helper.make_node("MatMul", ["scaled", "hidden_weights"], ["hidden_linear"]),
            helper.make_node("Add", ["hidden_linear", "hidden_bias"], ["hidden_pre"]),
            helper.make_node("Relu", ["hidden_pre"], ["hidden"]),
            helper.make_node("MatMul", ["hidden", "output_weights"], ["output_linear"]),
            helper.make_node("Add", ["output_linear", "output_bias"], [output_name]),
        ]
        graph = helper.make_graph(
            nodes,
            "tiny_scaled_mlp",
            [helper.make_tensor_value_info(input_name, input_type, [batch, self.width])],
            [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, [batch, 1])],
            initializers,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8  # what every onnxruntime since 1.14 reads
        onnx.checker.check_model(model, full_check=True)
        return model.SerializeToString()


def tiny_model(width: int, seed: int = 3) -> TinyModel:
    """Random weights; outputs of order 1e-2, like 10-second log returns scaled up."""
    rng = np.random.default_rng(seed)

    def f32(array: np.ndarray) -> np.ndarray:
        return array.astype(np.float32)

    return TinyModel(
        mean=f32(rng.normal(size=width)),
        scale=f32(rng.uniform(0.5, 2.0, size=width)),
        hidden_weights=f32(rng.normal(0.0, 0.3, size=(width, HIDDEN))),
        hidden_bias=f32(rng.normal(0.0, 0.1, size=HIDDEN)),
        output_weights=f32(rng.normal(0.0, 0.01, size=(HIDDEN, 1))),
        output_bias=f32(rng.normal(0.0, 0.001, size=1)),
    )
