"""Load and write model bundles: ``<version>/model.onnx`` beside ``<version>/manifest.json``.

``load_bundle`` returns a ``LoadedModel`` only after every check of ``docs/model_bundle.md``
passed; ``write_bundle`` runs the same checks before it publishes anything, so the batch
side cannot publish a bundle the live service would reject.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnxruntime as ort

from realtime.inference.errors import (
    ChecksumMismatch,
    GoldenMismatch,
    ManifestInvalid,
    SignatureMismatch,
)
from realtime.inference.manifest import DOCUMENT, BundleManifest

MODEL_FILE = "model.onnx"
MANIFEST_FILE = "manifest.json"
INPUT_NAME = "features"
OUTPUT_NAME = "yhat"
_FLOAT32_TENSOR = "tensor(float)"


def sha256_hex(data: bytes) -> str:
    """Lowercase hex SHA-256 of ``data``: the form of ``onnx_sha256``."""
    return hashlib.sha256(data).hexdigest()


class OutputShapeInvalid(ValueError):
    """The graph ran, but ``yhat`` is not ``[N, 1]`` for ``N`` rows.

    The load-time golden run checks the shape on the golden rows only: a graph whose output
    shape depends on the values can still break it on live rows.
    """


@dataclass(frozen=True)
class LoadedModel:
    """A verified bundle ready to serve; built only by ``load_bundle`` and ``write_bundle``."""

    manifest: BundleManifest
    session: ort.InferenceSession

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Predicted 10-second log returns, float64 ``[N]``, for raw features ``[N, K]`` or ``[K]``.

        Columns are the contract's model inputs in contract order, unscaled (the graph
        scales). float32 or float64; computed in float32, as the model was exported.
        Whatever onnxruntime raises passes through; ``OutputShapeInvalid`` if ``yhat`` is
        not ``[N, 1]``.
        """
        features = np.asarray(features)
        if features.dtype not in (np.float32, np.float64):
            raise TypeError(f"features must be float32 or float64, got {features.dtype}")
        rows = features.reshape(1, -1) if features.ndim == 1 else features
        if rows.ndim != 2 or rows.shape[1] != self.manifest.width:
            raise ValueError(
                f"features must be [N, {self.manifest.width}] or [{self.manifest.width}], "
                f"got shape {features.shape}"
            )
        yhat = self._run(np.ascontiguousarray(rows, dtype=np.float32))
        if yhat.shape != (rows.shape[0], 1):
            # Taking column 0 of a wider output would serve a number the model never meant.
            raise OutputShapeInvalid(
                f"{OUTPUT_NAME!r} has shape {yhat.shape} for {rows.shape[0]} rows, "
                f"expected ({rows.shape[0]}, 1)"
            )
        return yhat[:, 0].astype(np.float64)

    def _run(self, rows: np.ndarray) -> np.ndarray:
        (yhat,) = self.session.run([OUTPUT_NAME], {INPUT_NAME: rows})
        return yhat


def load_bundle(directory: str | Path) -> LoadedModel:
    """The bundle in ``directory``, verified; else a ``BundleRejected`` naming what failed.

    Order: manifest parses and validates, ``model.onnx`` hashes to ``onnx_sha256``, the
    graph's signature matches, the golden inputs reproduce the golden outputs.
    """
    directory = Path(directory)
    manifest_path = directory / MANIFEST_FILE
    try:
        manifest_text = manifest_path.read_bytes()
    except OSError as error:
        raise ManifestInvalid(
            DOCUMENT, f"cannot be read: {error.strerror}", source=manifest_path
        ) from None
    manifest = BundleManifest.from_json(manifest_text, source=manifest_path)
    model_path = directory / MODEL_FILE
    try:
        # The session is built from these bytes, never by reopening the file: what runs is
        # exactly what was hashed.
        onnx_bytes = model_path.read_bytes()
    except OSError:
        raise ChecksumMismatch(model_path, expected=manifest.onnx_sha256, actual=None) from None
    actual = sha256_hex(onnx_bytes)
    if actual != manifest.onnx_sha256:
        raise ChecksumMismatch(model_path, expected=manifest.onnx_sha256, actual=actual)
    return _verified_model(onnx_bytes, manifest, model_path)


def write_bundle(
    directory: str | Path, onnx_bytes: bytes, manifest: BundleManifest
) -> BundleManifest:
    """Verify, then publish ``model.onnx`` and ``manifest.json`` in ``directory``; the manifest.

    ``onnx_sha256`` is computed here from ``onnx_bytes``: leave it empty in ``manifest``
    (a non-empty one that differs raises ``ChecksumMismatch``). ``manifest.version`` must
    already end with its first 8 hex: build it with ``bundle_version(trained_at,
    sha256_hex(onnx_bytes))``. Each file is written to a temporary file and renamed into
    place, the manifest last, so a reader never sees a manifest without its model.
    Overwrites an existing bundle of the same version.
    """
    directory = Path(directory)
    model_path = directory / MODEL_FILE
    digest = sha256_hex(onnx_bytes)
    if manifest.onnx_sha256 and manifest.onnx_sha256 != digest:
        raise ChecksumMismatch(model_path, expected=manifest.onnx_sha256, actual=digest)
    manifest = replace(manifest, onnx_sha256=digest)
    _verified_model(onnx_bytes, manifest, model_path)
    directory.mkdir(parents=True, exist_ok=True)
    _replace_atomically(model_path, onnx_bytes)
    _replace_atomically(directory / MANIFEST_FILE, manifest.to_json().encode("utf-8"))
    _fsync_directory(directory)
    return manifest


def _verified_model(onnx_bytes: bytes, manifest: BundleManifest, model_path: Path) -> LoadedModel:
    session = _open_session(onnx_bytes, model_path)
    _check_signature(session, manifest.width, model_path)
    model = LoadedModel(manifest=manifest, session=session)
    _check_golden(model, model_path)
    return model


def _open_session(onnx_bytes: bytes, model_path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    # One row every second: a thread pool only adds wake-up jitter to single-row latency.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    try:
        return ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own unrelated classes per failure
        raise SignatureMismatch(
            model_path, "ONNX graph", expected="a graph onnxruntime can open", actual=str(error)
        ) from None


def _check_signature(session: ort.InferenceSession, width: int, model_path: Path) -> None:
    inputs, outputs = session.get_inputs(), session.get_outputs()
    input_names = [node.name for node in inputs]
    if input_names != [INPUT_NAME]:
        raise SignatureMismatch(model_path, "inputs", expected=[INPUT_NAME], actual=input_names)
    output_names = [node.name for node in outputs]
    if output_names != [OUTPUT_NAME]:
        raise SignatureMismatch(model_path, "outputs", expected=[OUTPUT_NAME], actual=output_names)
    for node in (inputs[0], outputs[0]):
        if node.type != _FLOAT32_TENSOR:
            raise SignatureMismatch(
                model_path, f"{node.name!r} type", expected=_FLOAT32_TENSOR, actual=node.type
            )
    shape = list(inputs[0].shape)
    # A static batch dimension means the export forgot dynamic_axes: only N=1 would run.
    if len(shape) != 2 or isinstance(shape[0], int) or shape[1] != width:
        raise SignatureMismatch(
            model_path, f"{INPUT_NAME!r} shape", expected=["N", width], actual=shape
        )
    shape = list(outputs[0].shape)
    # Exporters may leave the output dims symbolic; the golden run checks the real shape.
    if len(shape) != 2 or (isinstance(shape[1], int) and shape[1] != 1):
        raise SignatureMismatch(
            model_path, f"{OUTPUT_NAME!r} shape", expected=["N", 1], actual=shape
        )


def _check_golden(model: LoadedModel, model_path: Path) -> None:
    manifest = model.manifest
    rows = np.asarray(manifest.golden_inputs, dtype=np.float32)
    try:
        yhat = model._run(rows)
    except Exception as error:  # onnxruntime raises its own unrelated classes per failure
        raise SignatureMismatch(
            model_path,
            f"running {rows.shape[0]} golden rows",
            expected="outputs",
            actual=str(error),
        ) from None
    if yhat.shape != (rows.shape[0], 1):
        raise SignatureMismatch(
            model_path,
            f"{OUTPUT_NAME!r} shape for {rows.shape[0]} golden rows",
            expected=(rows.shape[0], 1),
            actual=yhat.shape,
        )
    for row, (actual, expected) in enumerate(
        zip(yhat[:, 0].astype(np.float64).tolist(), manifest.golden_outputs, strict=True)
    ):
        # Written so that a NaN output fails: NaN <= tolerance is False.
        if not abs(actual - expected) <= manifest.golden_tolerance:
            raise GoldenMismatch(
                model_path,
                row=row,
                expected=expected,
                actual=actual,
                tolerance=manifest.golden_tolerance,
            )


def _replace_atomically(path: Path, content: bytes) -> None:
    # The temporary file sits beside the target: os.replace is atomic only within one
    # filesystem. fsync before the rename, so a crash cannot leave a renamed empty file.
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(descriptor, "wb") as file:
            # mkstemp creates 0600; the service reading the bundle may run as another user.
            os.fchmod(file.fileno(), 0o644)
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _fsync_directory(directory: Path) -> None:
    # Makes the renames themselves durable; not every platform can open a directory.
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
