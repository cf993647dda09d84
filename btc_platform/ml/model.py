"""The MLP and its exported form with the scaler and the label scale folded into the graph."""

from __future__ import annotations

import itertools

import torch
from torch import nn

from btc_platform.ml.scaler import Scaler

HIDDEN_SIZES = (64, 32)
DROPOUT = 0.1


def layer_sizes(k: int) -> list[int]:
    """Widths from input to output, as the bundle manifest's ``architecture.layers``."""
    return [k, *HIDDEN_SIZES, 1]


def build_mlp(k: int) -> nn.Module:
    """K → 64 → 32 → 1 in float32, ReLU then Dropout(0.1) after each hidden layer.

    Weights come from torch's global generator: seed it first for a reproducible start.
    """
    layers: list[nn.Module] = []
    sizes = layer_sizes(k)
    for width_in, width_out in itertools.pairwise(sizes[:-1]):
        layers += [
            nn.Linear(width_in, width_out, dtype=torch.float32),
            nn.ReLU(),
            nn.Dropout(DROPOUT),
        ]
    layers.append(nn.Linear(sizes[-2], sizes[-1], dtype=torch.float32))
    return nn.Sequential(*layers)


class ScaledModel(nn.Module):
    """``forward(raw)`` = ``mlp((raw - mean) / scale) * label_scale``: raw float32 features
    [N, K] in, the predicted log return [N, 1] out.

    ``mean``, ``scale`` and ``label_scale`` are float32 buffers, so they are part of the
    state dict and of the exported graph. The MLP is trained on labels divided by
    ``label_scale``; multiplying here returns predictions in log-return units.
    """

    def __init__(self, mlp: nn.Module, scaler: Scaler, label_scale: float = 1.0) -> None:
        super().__init__()
        self.mlp = mlp
        self.register_buffer("mean", torch.tensor(scaler.mean, dtype=torch.float32))
        self.register_buffer("scale", torch.tensor(scaler.scale, dtype=torch.float32))
        self.register_buffer("label_scale", torch.tensor([label_scale], dtype=torch.float32))

    def standardise(self, features: torch.Tensor) -> torch.Tensor:
        """The MLP's input: ``(features - mean) / scale`` in float32."""
        return (features - self.mean) / self.scale

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.standardise(features)) * self.label_scale
