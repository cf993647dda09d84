"""A tiny scaler + MLP ONNX graph built with ``onnx.helper`` (no torch), and its numpy twin.

The graph has the bundle format's shape: ``features`` float32 [N, K] unscaled, then
``(x - mean) / scale``, a ReLU hidden layer, and ``yhat`` float32 [N, 1]. Keyword arguments
of ``TinyModel.onnx_bytes`` break one part of that signature at a time, or (``trap``) make a
graph that passes every load-time check but fails on live inputs whose first feature is far
from what its golden rows hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HIDDEN = 8

Trap = Literal["raises", "nan", "wide"]
"""How a trapped graph fails once ``|features[:, 0]| >= trap_beyond``: onnxruntime raises
(a Gather out of bounds), ``yhat`` is NaN (a log of a negative), or ``yhat`` is [N, 2]."""
TRAP_BEYOND = 100.0
"""Far outside the golden rows (``sample``: the scaler's centre, a few scales around it)."""


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
        trap: Trap | None = None,
    ) -> bytes:
        """The serialised opset-17 graph; defaults follow docs/model_bundle.md.

        With ``trap``, the output is unchanged for every row with ``|x0| < TRAP_BEYOND`` (the
        golden rows pass) and fails as ``Trap`` says for any other row.
        """
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
        ]
        output_width: str | int = 1
        if trap is None:
            nodes.append(helper.make_node("Add", ["output_linear", "output_bias"], [output_name]))
        else:
            trap_nodes, trap_initializers = _trap(trap, raw, output_name)
            nodes += [helper.make_node("Add", ["output_linear", "output_bias"], ["clean"])]
            nodes += trap_nodes
            initializers += trap_initializers
            output_width = "M" if trap == "wide" else 1
        graph = helper.make_graph(
            nodes,
            "tiny_scaled_mlp",
            [helper.make_tensor_value_info(input_name, input_type, [batch, self.width])],
            [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, [batch, output_width])],
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


def _trap(
    trap: Trap, raw: str, output_name: str
) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Nodes from ``clean`` (the model's [N, 1] output) to ``output_name``, failing per ``trap``."""
    initializers = [
        numpy_helper.from_array(np.array([0], dtype=np.int64), "trap_start"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "trap_end"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "trap_axis"),
    ]
    beyond = numpy_helper.from_array(np.array([TRAP_BEYOND], dtype=np.float32), "trap_beyond")
    nodes = [
        helper.make_node("Slice", [raw, "trap_start", "trap_end", "trap_axis"], ["trap_x0"]),
        helper.make_node("Abs", ["trap_x0"], ["trap_abs"]),  # [N, 1]
    ]
    if trap == "raises":
        # Gather's indices must lie in the table: |x0| beyond it is an onnxruntime error.
        initializers.append(
            numpy_helper.from_array(np.zeros(int(TRAP_BEYOND), dtype=np.float32), "trap_table")
        )
        nodes += [
            helper.make_node("Floor", ["trap_abs"], ["trap_floor"]),
            helper.make_node("Cast", ["trap_floor"], ["trap_index"], to=TensorProto.INT64),
            helper.make_node("Gather", ["trap_table", "trap_index"], ["trap_zero"], axis=0),
            helper.make_node("Add", ["clean", "trap_zero"], [output_name]),
        ]
    elif trap == "nan":
        # log(beyond - |x0|) is NaN past the bound; times zero it is 0 inside, NaN outside.
        initializers += [beyond, numpy_helper.from_array(np.array([0], dtype=np.float32), "trap_0")]
        nodes += [
            helper.make_node("Sub", ["trap_beyond", "trap_abs"], ["trap_room"]),
            helper.make_node("Log", ["trap_room"], ["trap_log"]),
            helper.make_node("Mul", ["trap_log", "trap_0"], ["trap_zero"]),
            helper.make_node("Add", ["clean", "trap_zero"], [output_name]),
        ]
    else:
        # Tile by 1 + floor(|x0| / beyond) of the first row: [N, 1] inside, [N, 2+] outside.
        initializers += [
            beyond,
            numpy_helper.from_array(np.array([1], dtype=np.int64), "trap_one"),
            numpy_helper.from_array(np.array([0], dtype=np.int64), "trap_row"),
        ]
        nodes += [
            helper.make_node("Div", ["trap_abs", "trap_beyond"], ["trap_ratio"]),
            helper.make_node("Floor", ["trap_ratio"], ["trap_floor"]),
            helper.make_node("Cast", ["trap_floor"], ["trap_extra"], to=TensorProto.INT64),
            helper.make_node("Gather", ["trap_extra", "trap_row"], ["trap_first"], axis=0),
            helper.make_node("Reshape", ["trap_first", "trap_one"], ["trap_flat"]),
            helper.make_node("Add", ["trap_flat", "trap_one"], ["trap_times"]),
            helper.make_node("Concat", ["trap_one", "trap_times"], ["trap_repeats"], axis=0),
            helper.make_node("Tile", ["clean", "trap_repeats"], [output_name]),
        ]
    return nodes, initializers
