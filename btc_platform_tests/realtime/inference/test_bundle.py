"""load_bundle and write_bundle on a real ONNX graph, run by a real onnxruntime session."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from btc_platform_tests.realtime.inference.examples import TRAINED_AT, K, example_manifest
from btc_platform_tests.support.torch_free import load_without_batch_packages
from realtime.inference import bundle
from realtime.inference.bundle import (
    MANIFEST_FILE,
    MODEL_FILE,
    OutputShapeInvalid,
    load_bundle,
    sha256_hex,
    write_bundle,
)
from realtime.inference.errors import (
    ChecksumMismatch,
    GoldenMismatch,
    ManifestInvalid,
    SignatureMismatch,
)
from realtime.inference.manifest import DOCUMENT, BundleManifest, bundle_version

onnx = pytest.importorskip("onnx", reason="building the test graph needs onnx (the batch extra)")
from btc_platform_tests.realtime.inference.tiny_model import (  # noqa: E402
    TRAP_BEYOND,
    TinyModel,
    tiny_model,
)

PROJECT = Path(__file__).parents[3]
GOLDEN_TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def model() -> TinyModel:
    return tiny_model(K)


def manifest_for(model: TinyModel, onnx_bytes: bytes) -> BundleManifest:
    """What the batch side writes: the model's scaler, golden rows and their outputs."""
    golden_inputs = model.sample(4, seed=5)
    return example_manifest(
        version=bundle_version(TRAINED_AT, sha256_hex(onnx_bytes)),
        scaler_mean=model.mean,
        scaler_scale=model.scale,
        golden_inputs=golden_inputs,
        golden_outputs=model.reference(golden_inputs),
        golden_tolerance=GOLDEN_TOLERANCE,
        onnx_sha256="",
    )


@pytest.fixture
def bundle_dir(tmp_path: Path, model: TinyModel) -> Path:
    onnx_bytes = model.onnx_bytes()
    manifest = manifest_for(model, onnx_bytes)
    directory = tmp_path / "BTCUSDT" / manifest.version
    write_bundle(directory, onnx_bytes, manifest)
    return directory


def install_model(directory: Path, onnx_bytes: bytes) -> None:
    """Swap model.onnx and make the manifest describe it, as a careful forger would."""
    (directory / MODEL_FILE).write_bytes(onnx_bytes)
    manifest_path = directory / MANIFEST_FILE
    document = json.loads(manifest_path.read_text())
    digest = sha256_hex(onnx_bytes)
    document["onnx_sha256"] = digest
    document["version"] = f"{document['version'][:-8]}{digest[:8]}"
    manifest_path.write_text(json.dumps(document))


def test_loaded_bundle_reproduces_golden_outputs_and_the_numpy_reference(bundle_dir, model):
    loaded = load_bundle(bundle_dir)

    golden = loaded.predict(np.asarray(loaded.manifest.golden_inputs))
    np.testing.assert_allclose(golden, loaded.manifest.golden_outputs, rtol=0, atol=1e-6)
    features = model.sample(256, seed=9)
    for rows in (features, features.astype(np.float64)):
        yhat = loaded.predict(rows)
        assert yhat.dtype == np.float64
        assert yhat.shape == (256,)
        np.testing.assert_allclose(yhat, model.reference(rows), rtol=0, atol=1e-6)
    assert np.ptp(yhat) > 1e-3, "outputs must vary, or the comparison proves nothing"


def test_one_row_gives_one_prediction(bundle_dir, model):
    loaded = load_bundle(bundle_dir)
    row = model.sample(1, seed=2)[0]
    yhat = loaded.predict(row)
    assert yhat.shape == (1,)
    assert yhat[0] == pytest.approx(model.reference(row[None, :])[0], abs=1e-6)


def test_predict_refuses_rows_of_another_width_or_dtype(bundle_dir):
    loaded = load_bundle(bundle_dir)
    with pytest.raises(ValueError, match=rf"\[N, {K}\]"):
        loaded.predict(np.zeros((2, K - 1), dtype=np.float32))
    with pytest.raises(ValueError, match=r"shape \(2, 3, 19\)"):
        loaded.predict(np.zeros((2, 3, K), dtype=np.float32))
    with pytest.raises(TypeError, match="int64"):
        loaded.predict(np.zeros((2, K), dtype=np.int64))


def test_an_output_whose_shape_depends_on_the_values_is_refused_at_predict(tmp_path, model):
    onnx_bytes = model.onnx_bytes(trap="wide")
    manifest = manifest_for(model, onnx_bytes)
    write_bundle(tmp_path / manifest.version, onnx_bytes, manifest)  # its golden rows pass
    loaded = load_bundle(tmp_path / manifest.version)
    rows = model.sample(2, seed=9)
    assert loaded.predict(rows).shape == (2,)
    rows[0, 0] = 2.5 * TRAP_BEYOND  # the trap widens by its first row
    # Column 0 of the [2, 3] output would look like two good predictions.
    with pytest.raises(OutputShapeInvalid, match=r"'yhat' has shape \(2, 3\) for 2 rows"):
        loaded.predict(rows)


def test_session_is_single_threaded_on_the_cpu_provider(bundle_dir):
    loaded = load_bundle(bundle_dir)
    options = loaded.session.get_session_options()
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (1, 1)
    assert loaded.session.get_providers() == ["CPUExecutionProvider"]


def test_one_flipped_byte_is_a_checksum_mismatch_naming_both_digests(bundle_dir):
    model_path = bundle_dir / MODEL_FILE
    content = bytearray(model_path.read_bytes())
    expected = sha256_hex(bytes(content))
    content[len(content) // 2] ^= 0x01
    model_path.write_bytes(bytes(content))

    with pytest.raises(ChecksumMismatch) as raised:
        load_bundle(bundle_dir)
    assert raised.value.expected == expected
    assert raised.value.actual == sha256_hex(bytes(content))
    assert expected in str(raised.value)
    assert raised.value.actual in str(raised.value)
    assert str(model_path) in str(raised.value)


def test_missing_model_is_a_checksum_mismatch(bundle_dir):
    (bundle_dir / MODEL_FILE).unlink()
    with pytest.raises(ChecksumMismatch, match="could not be read") as raised:
        load_bundle(bundle_dir)
    assert raised.value.actual is None


def test_changed_weights_under_a_matching_digest_fail_the_golden_check(bundle_dir, model):
    install_model(bundle_dir, model.with_output_bias(0.05).onnx_bytes())

    with pytest.raises(GoldenMismatch) as raised:
        load_bundle(bundle_dir)
    assert raised.value.row == 0
    assert raised.value.actual == pytest.approx(raised.value.expected + 0.05 - model.output_bias[0])
    assert raised.value.tolerance == GOLDEN_TOLERANCE


@pytest.mark.parametrize(
    ("graph", "what"),
    [
        pytest.param({"input_name": "x"}, "inputs", id="input name"),
        pytest.param({"output_name": "y"}, "outputs", id="output name"),
        pytest.param({"batch": 1}, "'features' shape", id="static batch"),
        pytest.param(
            {"input_type": onnx.TensorProto.DOUBLE}, "'features' type", id="float64 input"
        ),
    ],
)
def test_graph_signature_other_than_the_format_is_refused(bundle_dir, model, graph, what):
    install_model(bundle_dir, model.onnx_bytes(**graph))
    with pytest.raises(SignatureMismatch) as raised:
        load_bundle(bundle_dir)
    assert raised.value.what == what


def test_graph_wider_than_the_manifest_is_refused(bundle_dir):
    install_model(bundle_dir, tiny_model(K + 1).onnx_bytes())
    with pytest.raises(SignatureMismatch) as raised:
        load_bundle(bundle_dir)
    assert raised.value.expected == ["N", K]
    assert raised.value.actual == ["N", K + 1]


def test_bytes_that_are_no_onnx_graph_are_refused(bundle_dir):
    install_model(bundle_dir, b"not a protobuf at all")
    with pytest.raises(SignatureMismatch, match="ONNX graph"):
        load_bundle(bundle_dir)


def test_manifest_defects_on_disk_name_the_file_and_field(bundle_dir):
    manifest_path = bundle_dir / MANIFEST_FILE
    document = json.loads(manifest_path.read_text())
    document["scaler"]["scale"][5] = 0.0
    manifest_path.write_text(json.dumps(document))
    with pytest.raises(ManifestInvalid) as raised:
        load_bundle(bundle_dir)
    assert raised.value.field == "scaler.scale[5]"
    assert str(raised.value).startswith(f"{manifest_path}: field 'scaler.scale[5]'")

    manifest_path.write_text(manifest_path.read_text()[:-10])
    with pytest.raises(ManifestInvalid, match="not valid JSON") as raised:
        load_bundle(bundle_dir)
    assert raised.value.field == DOCUMENT

    manifest_path.unlink()
    with pytest.raises(ManifestInvalid, match="cannot be read"):
        load_bundle(bundle_dir)


def test_write_bundle_publishes_both_files_and_the_digest_of_the_model(tmp_path, model):
    onnx_bytes = model.onnx_bytes()
    directory = tmp_path / "store" / "BTCUSDT" / "v"

    written = write_bundle(directory, onnx_bytes, manifest_for(model, onnx_bytes))

    assert sorted(path.name for path in directory.iterdir()) == [MANIFEST_FILE, MODEL_FILE]
    assert (directory / MODEL_FILE).read_bytes() == onnx_bytes
    on_disk = json.loads((directory / MANIFEST_FILE).read_text())
    assert on_disk["onnx_sha256"] == sha256_hex((directory / MODEL_FILE).read_bytes())
    assert written.onnx_sha256 == on_disk["onnx_sha256"]
    assert (directory / MANIFEST_FILE).read_text() == written.to_json()
    assert load_bundle(directory).manifest == written
    assert (directory / MANIFEST_FILE).stat().st_mode & 0o777 == 0o644


def test_write_bundle_renames_the_manifest_into_place_last(tmp_path, model, monkeypatch):
    renamed: list[str] = []
    real_replace = os.replace

    def recording_replace(source, target):
        renamed.append(Path(target).name)
        real_replace(source, target)

    monkeypatch.setattr(bundle.os, "replace", recording_replace)
    onnx_bytes = model.onnx_bytes()
    write_bundle(tmp_path / "v", onnx_bytes, manifest_for(model, onnx_bytes))
    assert renamed == [MODEL_FILE, MANIFEST_FILE]


def test_write_bundle_overwrites_a_previous_attempt(bundle_dir, model):
    (bundle_dir / MODEL_FILE).write_bytes(b"half-written by a crashed run")
    onnx_bytes = model.onnx_bytes()
    write_bundle(bundle_dir, onnx_bytes, manifest_for(model, onnx_bytes))
    assert load_bundle(bundle_dir).manifest.onnx_sha256 == sha256_hex(onnx_bytes)


def test_write_bundle_refuses_a_manifest_describing_other_bytes(tmp_path, model):
    onnx_bytes = model.onnx_bytes()
    other_bytes = model.with_output_bias(0.05).onnx_bytes()
    manifest = manifest_for(model, other_bytes)
    manifest = replace(manifest, onnx_sha256=sha256_hex(other_bytes))
    with pytest.raises(ChecksumMismatch) as raised:
        write_bundle(tmp_path / "v", onnx_bytes, manifest)
    assert raised.value.actual == sha256_hex(onnx_bytes)
    assert not (tmp_path / "v").exists()


def test_write_bundle_refuses_a_version_not_ending_in_the_digest(tmp_path, model):
    onnx_bytes = model.onnx_bytes()
    manifest = manifest_for(model, model.with_output_bias(0.05).onnx_bytes())
    with pytest.raises(ManifestInvalid) as raised:
        write_bundle(tmp_path / "v", onnx_bytes, manifest)
    assert raised.value.field == "version"
    assert not (tmp_path / "v").exists()


def test_write_bundle_publishes_nothing_the_loader_would_refuse(tmp_path, model):
    onnx_bytes = model.with_output_bias(0.05).onnx_bytes()
    golden_from_another_model = manifest_for(model, model.onnx_bytes())
    manifest = example_manifest(
        **{
            name: getattr(golden_from_another_model, name)
            for name in ("scaler_mean", "scaler_scale", "golden_inputs", "golden_outputs")
        },
        version=bundle_version(TRAINED_AT, sha256_hex(onnx_bytes)),
        onnx_sha256="",
    )
    with pytest.raises(GoldenMismatch):
        write_bundle(tmp_path / "v", onnx_bytes, manifest)
    assert not (tmp_path / "v").exists()


def test_bundle_loads_in_a_process_without_torch_dagster_or_onnx(bundle_dir):
    child = load_without_batch_packages(bundle_dir)
    assert child["batch_modules"] == []
    np.testing.assert_allclose(child["yhat"], child["golden"], rtol=0, atol=1e-6)
    assert child["golden"] == list(load_bundle(bundle_dir).manifest.golden_outputs)
