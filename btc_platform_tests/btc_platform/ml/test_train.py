"""Training: learning a planted signal, reproducibility, early stopping, train-only scaling."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch.nn import functional

from btc_platform.ml.dataset import Splits, split_by_time, training_set_from_table
from btc_platform.ml.export import export_onnx, onnx_outputs, torch_outputs
from btc_platform.ml.scaler import Scaler
from btc_platform.ml.train import TrainConfig, label_scale_of, train_mlp
from btc_platform_tests.btc_platform.ml.synthetic import gold_rows, trained_outcome

SHORT = TrainConfig(max_epochs=3)


@pytest.fixture(scope="module")
def small_splits() -> Splits:
    return split_by_time(training_set_from_table(gold_rows(4_000, seed=11, planted=True)))


def test_mlp_beats_every_baseline_on_a_planted_nonlinear_signal() -> None:
    """y = a · tvi_5s · burst_1s + noise: a linear model can only fit the average slope, so it
    keeps part of the signal but not all; the MLP must beat it, not just match it."""
    test = trained_outcome(10_000, seed=7, planted=True).test

    assert test["linear"].mae < test["zero"].mae  # the comparison with linear is not trivial
    for baseline in ("zero", "momentum", "linear"):
        assert test["model"].mae < test[baseline].mae, baseline
        assert test["model"].mse < test[baseline].mse, baseline
    assert test["model"].hit_rate > 0.6


def test_the_mlp_learns_in_label_scale_units_and_predicts_in_log_return_units() -> None:
    outcome = trained_outcome(10_000, seed=7, planted=True)

    assert outcome.trained.label_scale == pytest.approx(np.std(outcome.splits.train.labels))
    assert 5e-5 < np.std(outcome.test_predictions) < 5e-4  # log returns, not std units


def test_same_seed_and_data_give_bit_identical_weights(small_splits: Splits) -> None:
    first = train_mlp(small_splits, SHORT)
    second = train_mlp(small_splits, SHORT)
    other_seed = train_mlp(small_splits, dataclasses.replace(SHORT, seed=8))

    assert _weight_bytes(first.model) == _weight_bytes(second.model)
    assert first.losses == second.losses
    assert _weight_bytes(first.model) != _weight_bytes(other_seed.model)
    rows = small_splits.test.features
    first_onnx, second_onnx = export_onnx(first.model, 19), export_onnx(second.model, 19)
    np.testing.assert_array_equal(onnx_outputs(first_onnx, rows), onnx_outputs(second_onnx, rows))
    np.testing.assert_array_equal(
        torch_outputs(first.model, rows), torch_outputs(second.model, rows)
    )


def test_training_restores_torchs_global_state(small_splits: Splits) -> None:
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    rng_state = torch.get_rng_state()

    train_mlp(small_splits, dataclasses.replace(SHORT, max_epochs=1))

    assert torch.get_num_threads() == threads
    assert torch.are_deterministic_algorithms_enabled() == deterministic
    assert torch.equal(torch.get_rng_state(), rng_state)


def test_early_stopping_keeps_the_best_validation_epoch(small_splits: Splits) -> None:
    config = TrainConfig(max_epochs=60, patience=3, lr=1e-2)  # overfits fast, stops early
    trained = train_mlp(small_splits, config)

    validation_losses = [loss.validation for loss in trained.losses]
    assert trained.epochs == len(trained.losses) < config.max_epochs
    assert trained.epochs == trained.best_epoch + config.patience
    assert trained.best_validation_loss == min(validation_losses)
    assert [loss.epoch for loss in trained.losses] == list(range(1, trained.epochs + 1))
    assert not trained.model.training
    # the returned weights are the best epoch's, not the last epoch's
    model = trained.model
    with torch.no_grad():
        scaled = model.mlp(
            model.standardise(torch.tensor(small_splits.validation.features, dtype=torch.float32))
        )
    labels = torch.tensor(small_splits.validation.labels / trained.label_scale, dtype=torch.float32)
    loss = functional.huber_loss(scaled, labels.unsqueeze(1), delta=config.huber_delta)
    assert loss.item() == pytest.approx(trained.best_validation_loss, rel=1e-6)


def test_scaler_is_fitted_on_train_only(small_splits: Splits) -> None:
    shifted = dataclasses.replace(
        small_splits,
        validation=dataclasses.replace(
            small_splits.validation, features=small_splits.validation.features + 100.0
        ),
        test=dataclasses.replace(small_splits.test, features=small_splits.test.features - 50.0),
    )
    one_epoch = dataclasses.replace(SHORT, max_epochs=1)

    plain, moved = train_mlp(small_splits, one_epoch), train_mlp(shifted, one_epoch)

    expected = Scaler.fit(small_splits.train.features)
    for trained in (plain, moved):
        np.testing.assert_array_equal(trained.scaler.mean, expected.mean)
        np.testing.assert_array_equal(trained.scaler.scale, expected.scale)
        assert trained.model.mean.tolist() == expected.mean.astype(np.float32).tolist()
        assert trained.label_scale == label_scale_of(small_splits.train.labels)


def test_label_scale_of_constant_labels_is_one() -> None:
    assert label_scale_of(np.zeros(10)) == 1.0
    assert label_scale_of(np.array([1e-4, -1e-4])) == pytest.approx(1e-4)


def test_invalid_config_is_refused(small_splits: Splits) -> None:
    with pytest.raises(ValueError, match="invalid config"):
        train_mlp(small_splits, TrainConfig(max_epochs=0))


def _weight_bytes(model: torch.nn.Module) -> dict[str, bytes]:
    return {name: tensor.numpy().tobytes() for name, tensor in model.state_dict().items()}
