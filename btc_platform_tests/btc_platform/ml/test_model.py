"""The MLP's shape and the scaled model's folded preprocessing."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from btc_platform.ml.model import ScaledModel, build_mlp, layer_sizes
from btc_platform.ml.scaler import Scaler


def test_mlp_is_k_64_32_1_with_relu_and_dropout_after_each_hidden_layer() -> None:
    mlp = build_mlp(19)

    kinds = [type(layer) for layer in mlp]
    assert kinds == [nn.Linear, nn.ReLU, nn.Dropout, nn.Linear, nn.ReLU, nn.Dropout, nn.Linear]
    linears = [layer for layer in mlp if isinstance(layer, nn.Linear)]
    assert [(layer.in_features, layer.out_features) for layer in linears] == [
        (19, 64),
        (64, 32),
        (32, 1),
    ]
    assert all(layer.p == 0.1 for layer in mlp if isinstance(layer, nn.Dropout))
    assert all(p.dtype == torch.float32 for p in mlp.parameters())
    assert layer_sizes(19) == [19, 64, 32, 1]


def test_scaled_model_standardises_raw_features_and_rescales_the_output() -> None:
    torch.manual_seed(0)
    mlp = build_mlp(3).eval()
    scaler = Scaler(np.array([1.0, -2.0, 1e-4]), np.array([2.0, 0.5, 3e-5]))
    model = ScaledModel(mlp, scaler, label_scale=1.5e-4).eval()
    raw = torch.tensor([[1.0, -2.0, 1e-4], [3.0, 0.0, 4e-5]], dtype=torch.float32)

    expected = mlp((raw - torch.tensor([1.0, -2.0, 1e-4])) / torch.tensor([2.0, 0.5, 3e-5]))
    torch.testing.assert_close(model(raw), expected * 1.5e-4, rtol=0, atol=0)


def test_scaler_and_label_scale_are_float32_buffers_of_the_state_dict() -> None:
    model = ScaledModel(build_mlp(2), Scaler(np.array([0.5, 1.0]), np.array([2.0, 4.0])), 3e-4)

    state = model.state_dict()
    for name in ("mean", "scale", "label_scale"):
        assert state[name].dtype == torch.float32
        assert not state[name].requires_grad
    assert state["mean"].tolist() == [0.5, 1.0]
    assert state["label_scale"].item() == np.float32(3e-4)
    assert {name for name, _ in model.named_parameters()} == {
        f"mlp.{name}" for name, _ in model.mlp.named_parameters()
    }
