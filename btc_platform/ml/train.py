"""Deterministic training of the MLP with early stopping on the validation split."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional

from btc_platform.ml.dataset import Splits
from btc_platform.ml.model import ScaledModel, build_mlp
from btc_platform.ml.scaler import Scaler


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run (the defaults are the production ones)."""

    seed: int = 7
    max_epochs: int = 200
    batch_size: int = 512
    lr: float = 1e-3
    weight_decay: float = 0.0
    huber_delta: float = 1.0
    """In units of the label scale (the train labels' std): errors within one std are
    squared, larger ones (fat-tailed returns) count linearly."""
    patience: int = 10
    """Epochs without a new best validation loss before stopping."""


@dataclass(frozen=True)
class EpochLoss:
    """Mean Huber losses of one epoch, in label-scale units (epochs count from 1)."""

    epoch: int
    train: float
    """Mean over the epoch's batches, in training mode (dropout on)."""
    validation: float
    """Over the whole validation split, in eval mode."""


@dataclass(frozen=True)
class TrainedModel:
    """The model at its best validation epoch, in eval mode, and how it got there."""

    model: ScaledModel
    scaler: Scaler
    label_scale: float
    """Train labels' std (ddof=0): the MLP learnt ``y / label_scale``; folded into ``model``."""
    best_epoch: int
    epochs: int
    losses: tuple[EpochLoss, ...]
    config: TrainConfig

    @property
    def best_validation_loss(self) -> float:
        return self.losses[self.best_epoch - 1].validation


def label_scale_of(labels: np.ndarray) -> float:
    """Population std of ``labels``, or 1.0 when it is zero or not finite."""
    std = float(np.std(labels, ddof=0)) if len(labels) else 0.0
    return std if np.isfinite(std) and std > 0 else 1.0


@dataclass(frozen=True)
class WarmStart:
    """Continue from a trained model, fitting only its parameters whose names start with
    ``trainable_prefix`` (the incremental update refits the output layer on the newest
    hours). The base model's scaler and label scale stay, so its inputs and outputs keep
    their meaning."""

    model: ScaledModel
    trainable_prefix: str = "mlp.6."


def train_mlp(
    splits: Splits, config: TrainConfig | None = None, *, warm_start: WarmStart | None = None
) -> TrainedModel:
    """Train on ``splits.train`` (Huber loss, AdamW, shuffled mini-batches), stop early on
    ``splits.validation`` and restore the best epoch's weights. ``splits.test`` is not read.

    Bit-for-bit reproducible for the same data and config: seeded initialisation, dropout
    and shuffling, deterministic kernels, one thread, float32. Torch's global RNG state,
    thread count and determinism setting are restored on return.
    """
    config = config or TrainConfig()
    if config.max_epochs < 1 or config.batch_size < 1 or config.patience < 1:
        raise ValueError(f"invalid config {config}")
    with _deterministic_torch(config.seed):
        if warm_start is None:
            scaler = Scaler.fit(splits.train.features)
            label_scale = label_scale_of(splits.train.labels)
            mlp = build_mlp(splits.train.features.shape[1])
            model = ScaledModel(mlp, scaler, label_scale)
        else:
            model = copy.deepcopy(warm_start.model)
            mlp = model.mlp
            scaler = Scaler(
                model.mean.numpy().astype(np.float64), model.scale.numpy().astype(np.float64)
            )
            label_scale = float(model.label_scale[0])
            for name, parameter in model.named_parameters():
                parameter.requires_grad_(name.startswith(warm_start.trainable_prefix))
        with torch.no_grad():
            train_x = model.standardise(_float32(splits.train.features))
            validation_x = model.standardise(_float32(splits.validation.features))
        train_y = _float32(splits.train.labels / label_scale).unsqueeze(1)
        validation_y = _float32(splits.validation.labels / label_scale).unsqueeze(1)

        optimiser = torch.optim.AdamW(
            [p for p in mlp.parameters() if p.requires_grad],
            lr=config.lr,
            weight_decay=config.weight_decay,
        )
        shuffle = torch.Generator().manual_seed(config.seed)
        losses: list[EpochLoss] = []
        best_epoch, best_loss, best_state = 0, float("inf"), copy.deepcopy(mlp.state_dict())
        for epoch in range(1, config.max_epochs + 1):
            train_loss = _train_epoch(mlp, optimiser, train_x, train_y, config, shuffle)
            mlp.eval()
            with torch.no_grad():
                validation_loss = float(
                    functional.huber_loss(mlp(validation_x), validation_y, delta=config.huber_delta)
                )
            losses.append(EpochLoss(epoch, train_loss, validation_loss))
            if validation_loss < best_loss:
                best_epoch, best_loss = epoch, validation_loss
                best_state = copy.deepcopy(mlp.state_dict())
            elif epoch - best_epoch >= config.patience:
                break
        mlp.load_state_dict(best_state)
        model.eval()
    return TrainedModel(
        model=model,
        scaler=scaler,
        label_scale=label_scale,
        best_epoch=best_epoch,
        epochs=len(losses),
        losses=tuple(losses),
        config=config,
    )


def _train_epoch(
    mlp: torch.nn.Module,
    optimiser: torch.optim.Optimizer,
    features: torch.Tensor,
    labels: torch.Tensor,
    config: TrainConfig,
    shuffle: torch.Generator,
) -> float:
    """One pass over the rows in a seeded random order; the mean batch loss, row-weighted."""
    mlp.train()
    order = torch.randperm(len(features), generator=shuffle)
    total = 0.0
    for batch in order.split(config.batch_size):
        optimiser.zero_grad(set_to_none=True)
        loss = functional.huber_loss(mlp(features[batch]), labels[batch], delta=config.huber_delta)
        loss.backward()
        optimiser.step()
        total += loss.item() * len(batch)
    return total / len(features)


def _float32(values: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))


@contextmanager
def _deterministic_torch(seed: int) -> Iterator[None]:
    """Seeded global RNG, deterministic kernels and one thread; all restored afterwards."""
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True)
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(threads)
            torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
