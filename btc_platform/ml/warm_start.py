"""A trained model rebuilt from its ONNX file, the only form a bundle keeps (no pickle).

The exporter keeps torch's parameter and buffer names as the graph's initializers
(``mlp.0.weight`` … ``mlp.6.bias``, ``mean``, ``scale``, ``label_scale``), so the file is
also a complete, inert store of the weights.
"""

from __future__ import annotations

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from btc_platform.ml.model import ScaledModel, build_mlp
from btc_platform.ml.scaler import Scaler


class NotAnMlpBundle(ValueError):
    """An ONNX file whose initializers are not those of this project's MLP."""


def model_from_onnx(onnx_bytes: bytes) -> ScaledModel:
    """The ``ScaledModel`` whose export is ``onnx_bytes``, in eval mode."""
    graph = onnx.load_model_from_string(onnx_bytes).graph
    weights = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    try:
        mean, scale, label_scale = weights["mean"], weights["scale"], weights["label_scale"]
        state = {
            name.removeprefix("mlp."): torch.from_numpy(np.array(value))
            for name, value in weights.items()
            if name.startswith("mlp.")
        }
        mlp = build_mlp(len(mean))
        mlp.load_state_dict(state)
    except (KeyError, RuntimeError) as error:
        raise NotAnMlpBundle(f"the ONNX initializers do not make this MLP: {error}") from error
    scaler = Scaler(mean.astype(np.float64), scale.astype(np.float64))
    model = ScaledModel(mlp, scaler, float(label_scale[0]))
    return model.eval()
