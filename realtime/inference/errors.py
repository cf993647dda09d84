"""Typed reasons to refuse a model bundle, or the pointer naming it; all are ``BundleRejected``s.

The live service catches ``BundleRejected``, keeps serving the model it already has and
reports the message, which names the file, the field and the offending value; the class
name is the ``reason`` label of ``btc_model_load_failures_total``.
"""

from __future__ import annotations

from pathlib import Path


class BundleRejected(Exception):
    """Base class: this bundle must not serve predictions."""


class DocumentInvalid(BundleRejected):
    """A JSON document of the store is unreadable, or a field is missing, mistyped or out of
    range. ``field`` is a dotted path into it (``scaler.scale[3]``); ``source`` is the file it
    came from, or the subclass's ``default_source`` for one built in memory."""

    default_source = "document"

    def __init__(self, field: str, problem: str, *, source: str | Path | None = None) -> None:
        self.field = field
        self.problem = problem
        self.source = str(source) if source is not None else self.default_source
        super().__init__(f"{self.source}: field {field!r}: {problem}")


class ManifestInvalid(DocumentInvalid):
    """``manifest.json`` is unreadable, or a field is missing, mistyped or out of range.

    ``source`` is ``"manifest"`` for one built in memory by the writer.
    """

    default_source = "manifest"


class PointerInvalid(DocumentInvalid):
    """``<SYMBOL>/current.json`` is not UTF-8 JSON, or a field is missing or mistyped.

    A pointer names no bundle the service could trust, so it is refused like one: the last
    good model keeps serving.
    """

    default_source = "current.json"


class BundleMissing(BundleRejected):
    """A file of the bundle the pointer names is not in the store (``uri`` is the bundle's)."""

    def __init__(self, uri: str, name: str) -> None:
        self.uri = uri
        self.name = name
        super().__init__(f"{uri}: {name} is not in the store")


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
