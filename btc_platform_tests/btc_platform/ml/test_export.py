"""The ONNX export: signature, and agreement with torch."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from btc_platform.ml.export import (
    export_onnx,
    max_abs_difference,
    onnx_outputs,
    onnx_session,
    torch_outputs,
)
from btc_platform.ml.model import ScaledModel, build_mlp
from btc_platform.ml.scaler import Scaler
from btc_platform_tests.btc_platform.ml.synthetic import trained_outcome

K = 19


@pytest.fixture(scope="module")
def trained_model() -> ScaledModel:
    return trained_outcome(10_000, seed=7, planted=True).trained.model


@pytest.fixture(scope="module")
def onnx_bytes(trained_model: ScaledModel) -> bytes:
    return export_onnx(trained_model, K)


def test_signature_is_features_in_yhat_out_opset_17(onnx_bytes: bytes) -> None:
    graph_model = onnx.load_from_string(onnx_bytes)
    onnx.checker.check_model(graph_model)

    assert [(o.domain, o.version) for o in graph_model.opset_import] == [("", 17)]
    (features,) = graph_model.graph.input
    (yhat,) = graph_model.graph.output
    assert features.name == "features"
    assert yhat.name == "yhat"
    for value, width in ((features, K), (yhat, 1)):
        assert value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
        batch, columns = value.type.tensor_type.shape.dim
        assert batch.dim_param  # symbolic: any batch size
        assert columns.dim_value == width
    inputs = onnx_session(onnx_bytes).get_inputs()
    assert [(i.name, i.type) for i in inputs] == [("features", "tensor(float)")]


def test_scaler_is_folded_into_the_graph(onnx_bytes: bytes) -> None:
    ops = [node.op_type for node in onnx.load_from_string(onnx_bytes).graph.node]

    assert ops[:2] == ["Sub", "Div"]
    assert ops[-1] == "Mul"  # the label scale


@pytest.mark.parametrize("rows", [1, 7, 2_000])
def test_onnx_matches_torch_within_1e_6(trained_model: ScaledModel, onnx_bytes: bytes, rows: int):
    outcome = trained_outcome(10_000, seed=7, planted=True)
    rng = np.random.default_rng(rows)
    # raw features around the real ones, so every unit and scale of the contract is exercised
    base = outcome.splits.test.features[rng.integers(0, len(outcome.splits.test), rows)]
    noise = rng.normal(0, 1, base.shape) * outcome.trained.scaler.scale
    features = (base + noise).astype(np.float32)

    from_torch = torch_outputs(trained_model, features)
    from_onnx = onnx_outputs(onnx_bytes, features)

    assert from_torch.shape == from_onnx.shape == (rows,)
    assert from_onnx.dtype == np.float32
    assert max_abs_difference(from_torch, from_onnx) <= 1e-6
    assert np.abs(from_torch).max() > 1e-6  # the bound is not met by outputs that are all ~0


def test_a_model_in_training_mode_is_refused() -> None:
    model = ScaledModel(build_mlp(K), Scaler(np.zeros(K), np.ones(K))).train()

    with pytest.raises(ValueError, match="eval mode"):
        export_onnx(model, K)
    with pytest.raises(ValueError, match="training mode"):
        torch_outputs(model, np.zeros((1, K)))


def test_max_abs_difference() -> None:
    assert max_abs_difference(np.array([1.0, 2.0]), np.array([1.5, 1.0])) == 1.0
    assert max_abs_difference(np.array([]), np.array([])) == 0.0
    with pytest.raises(ValueError, match="shapes differ"):
        max_abs_difference(np.zeros(2), np.zeros(3))
