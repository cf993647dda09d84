"""Typed reasons to refuse a model bundle; all are ``BundleRejected``s.

The live service catches ``BundleRejected``, keeps serving the model it already has and
reports the message, which names the file, the field and the offending value.
"""

from __future__ import annotations

from pathlib import Path


class BundleRejected(Exception):
    """Base class: this bundle must not serve predictions."""


class ManifestInvalid(BundleRejected):
    """``manifest.json`` is unreadable, or a field is missing, mistyped or out of range.

    ``field`` is a dotted path into the manifest (``scaler.scale[3]``); ``source`` is the
    file it came from, or ``"manifest"`` for one built in memory by the writer.
    """

    def __init__(self, field: str, problem: str, *, source: str | Path = "manifest") -> None:
        self.field = field
        self.problem = problem
        self.source = str(source)
        super().__init__(f"{self.source}: field {field!r}: {problem}")


class ChecksumMismatch(BundleRejected):
    """``model.onnx`` is not the artefact the manifest describes (``onnx_sha256``).

    ``actual`` is ``None`` when the file could not be read at all.
    """

    def __init__(self, path: str | Path, *, expected: str, actual: str | None) -> None:
        self.path = str(path)
        self.expected = expected
        self.actual = actual
        found = f"has sha256 {actual}" if actual is not None else "could not be read"
        super().__init__(f"{self.path}: {found}, manifest onnx_sha256 is {expected}")


class SignatureMismatch(BundleRejected):
    """The ONNX graph's inputs or outputs are not the ones the manifest and format declare.

    Also raised when onnxruntime cannot open or run the graph at all: such a file has no
    usable signature.
    """

    def __init__(self, path: str | Path, what: str, *, expected: object, actual: object) -> None:
        self.path = str(path)
        self.what = what
        self.expected = expected
        self.actual = actual
        super().__init__(f"{self.path}: {what}: expected {expected!r}, model has {actual!r}")


class GoldenMismatch(BundleRejected):
    """The model does not reproduce ``golden.outputs`` within ``golden.tolerance``.

    ``row`` is the first golden row outside the tolerance (a NaN output counts as outside).
    """

    def __init__(
        self, path: str | Path, *, row: int, expected: float, actual: float, tolerance: float
    ) -> None:
        self.path = str(path)
        self.row = row
        self.expected = expected
        self.actual = actual
        self.tolerance = tolerance
        super().__init__(
            f"{self.path}: golden row {row}: model gives {actual!r}, manifest expects "
            f"{expected!r} (|difference| {abs(actual - expected)!r} > tolerance {tolerance!r})"
        )
