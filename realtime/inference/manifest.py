"""``manifest.json`` of a model bundle: one validated, immutable ``BundleManifest``.

The batch side builds a ``BundleManifest(...)`` and hands it to ``write_bundle``; the live
side gets one from ``BundleManifest.from_json``. Both go through the same ``__post_init__``,
so a manifest the writer accepts is one the loader accepts.
"""

from __future__ import annotations

import json
import math
import numbers
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from realtime.features.contract import FeatureContract, load_contract
from realtime.inference.errors import ManifestInvalid

FORMAT = "btc-platform-model-bundle"
FORMAT_VERSION = 1

DOCUMENT = "(document)"
"""The ``field`` of a ``ManifestInvalid`` about the file as a whole (unreadable, not JSON)."""

_SHA256 = re.compile(r"[0-9a-f]{64}")
_VERSION = re.compile(r"(\d{8}T\d{6}Z)-([0-9a-f]{8})")
_VERSION_TIME = "%Y%m%dT%H%M%SZ"
_SYMBOL = re.compile(r"[A-Z0-9]+")

# The JSON layout of format version 1, in the order ``to_json`` writes it.
_TOP_LEVEL = (
    "format",
    "format_version",
    "version",
    "symbol",
    "created_at",
    "feature_contract",
    "scaler",
    "architecture",
    "training",
    "lineage",
    "metrics",
    "gate",
    "onnx_sha256",
    "golden",
)
_FEATURE_CONTRACT = ("version", "inputs", "label")
_SCALER = ("mean", "scale")
_GOLDEN = ("inputs", "outputs", "tolerance")


def bundle_version(trained_at: datetime, onnx_sha256: str) -> str:
    """``<UTC training time, compact ISO>-<first 8 hex of onnx_sha256>``: sortable and unique."""
    if trained_at.tzinfo is None:
        raise ValueError(f"trained_at must be timezone-aware, got naive {trained_at!r}")
    if not _SHA256.fullmatch(onnx_sha256):
        raise ValueError(f"onnx_sha256 must be 64 lowercase hex digits, got {onnx_sha256!r}")
    return f"{trained_at.astimezone(UTC).strftime(_VERSION_TIME)}-{onnx_sha256[:8]}"


@dataclass(frozen=True)
class BundleManifest:
    """The manifest of one bundle, valid by construction (else ``ManifestInvalid``).

    Sequences are stored as tuples of Python floats; ``architecture``, ``training``,
    ``lineage``, ``metrics`` and ``gate`` are free-form JSON objects, normalised to plain JSON
    types (numpy scalars are accepted and converted). ``onnx_sha256`` may be left empty
    only until ``write_bundle`` sets it from the model bytes; ``to_json`` requires it.
    """

    format: ClassVar[str] = FORMAT
    format_version: ClassVar[int] = FORMAT_VERSION

    version: str
    symbol: str
    created_at: str
    """UTC, ISO 8601 with a ``Z`` suffix: ``2026-01-02T00:05:12Z``."""
    contract_version: int
    input_names: tuple[str, ...]
    """Must equal ``load_contract(contract_version).model_inputs``, in that order."""
    label: str
    scaler_mean: tuple[float, ...]
    scaler_scale: tuple[float, ...]
    architecture: dict[str, Any]
    training: dict[str, Any]
    lineage: dict[str, Any]
    metrics: dict[str, Any]
    gate: dict[str, Any]
    golden_inputs: tuple[tuple[float, ...], ...]
    """Raw (unscaled) feature rows, K wide, each value float32-representable."""
    golden_outputs: tuple[float, ...]
    golden_tolerance: float
    """Absolute tolerance on every golden output."""
    onnx_sha256: str = ""

    def __post_init__(self) -> None:
        _check_version(self.version)
        _set(self, "symbol", _symbol(self.symbol))
        _check_created_at(self.created_at)
        contract = _contract(self.contract_version)
        _set(self, "input_names", _input_names(self.input_names, contract))
        if self.label != contract.label:
            raise ManifestInvalid(
                "feature_contract.label",
                f"is {self.label!r}, contract v{contract.version} labels {contract.label!r}",
            )
        width = len(contract.model_inputs)
        per_input = f"contract v{contract.version} model input"
        _set(self, "scaler_mean", _reals("scaler.mean", self.scaler_mean, width, per_input))
        scale = _reals("scaler.scale", self.scaler_scale, width, per_input)
        for index, value in enumerate(scale):
            if value <= 0.0:
                raise ManifestInvalid(f"scaler.scale[{index}]", f"must be > 0, got {value!r}")
        _set(self, "scaler_scale", scale)
        for name in ("architecture", "training", "lineage", "metrics", "gate"):
            _set(self, name, _json_object(name, getattr(self, name)))
        _set(self, "golden_inputs", _golden_inputs(self.golden_inputs, width, per_input))
        outputs = _reals(
            "golden.outputs", self.golden_outputs, len(self.golden_inputs), "golden input row"
        )
        _set(self, "golden_outputs", outputs)
        tolerance = _real("golden.tolerance", self.golden_tolerance)
        if tolerance <= 0.0:
            raise ManifestInvalid("golden.tolerance", f"must be > 0, got {tolerance!r}")
        _set(self, "golden_tolerance", tolerance)
        _check_onnx_sha256(self.onnx_sha256, self.version)

    @property
    def width(self) -> int:
        """K, the number of model inputs per row."""
        return len(self.input_names)

    @classmethod
    def from_json(
        cls, text: str | bytes, *, source: str | Path = "manifest.json"
    ) -> BundleManifest:
        """Parse and validate a manifest; ``source`` names the file in error messages."""
        try:
            return cls._from_document(_parse(text))
        except ManifestInvalid as error:
            raise ManifestInvalid(error.field, error.problem, source=source) from None

    @classmethod
    def _from_document(cls, document: object) -> BundleManifest:
        top = _fields(document, "", _TOP_LEVEL, check_format=True)
        if not top["onnx_sha256"]:
            raise ManifestInvalid("onnx_sha256", "is empty")
        contract = _fields(top["feature_contract"], "feature_contract.", _FEATURE_CONTRACT)
        scaler = _fields(top["scaler"], "scaler.", _SCALER)
        golden = _fields(top["golden"], "golden.", _GOLDEN)
        return cls(
            version=top["version"],
            symbol=top["symbol"],
            created_at=top["created_at"],
            contract_version=contract["version"],
            input_names=contract["inputs"],
            label=contract["label"],
            scaler_mean=scaler["mean"],
            scaler_scale=scaler["scale"],
            architecture=top["architecture"],
            training=top["training"],
            lineage=top["lineage"],
            metrics=top["metrics"],
            gate=top["gate"],
            golden_inputs=golden["inputs"],
            golden_outputs=golden["outputs"],
            golden_tolerance=golden["tolerance"],
            onnx_sha256=top["onnx_sha256"],
        )

    def to_json(self) -> str:
        """The canonical text: format-1 layout in document order, free-form keys sorted.

        Floats are written with ``repr`` precision, so float32 values round-trip exactly.
        """
        if not self.onnx_sha256:
            raise ManifestInvalid("onnx_sha256", "is not set; write_bundle sets it")
        document = {
            "format": self.format,
            "format_version": self.format_version,
            "version": self.version,
            "symbol": self.symbol,
            "created_at": self.created_at,
            "feature_contract": {
                "version": self.contract_version,
                "inputs": list(self.input_names),
                "label": self.label,
            },
            "scaler": {"mean": list(self.scaler_mean), "scale": list(self.scaler_scale)},
            "architecture": _sorted(self.architecture),
            "training": _sorted(self.training),
            "lineage": _sorted(self.lineage),
            "metrics": _sorted(self.metrics),
            "gate": _sorted(self.gate),
            "onnx_sha256": self.onnx_sha256,
            "golden": {
                "inputs": [list(row) for row in self.golden_inputs],
                "outputs": list(self.golden_outputs),
                "tolerance": self.golden_tolerance,
            },
        }
        return json.dumps(document, indent=2, allow_nan=False) + "\n"


def _set(manifest: BundleManifest, name: str, value: object) -> None:
    # Normalising in __post_init__ of a frozen dataclass is the one place mutation is due.
    object.__setattr__(manifest, name, value)


def _parse(text: str | bytes) -> object:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [key for key, _ in pairs]
        repeated = sorted({key for key in keys if keys.count(key) > 1})
        if repeated:
            raise ManifestInvalid(repeated[0], "appears more than once in one object")
        return dict(pairs)

    def no_constant(name: str) -> None:
        raise ManifestInvalid(DOCUMENT, f"{name} is not JSON")

    try:
        return json.loads(text, object_pairs_hook=no_duplicates, parse_constant=no_constant)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ManifestInvalid(DOCUMENT, f"is not valid JSON: {error}") from None


def _fields(
    document: object, prefix: str, names: tuple[str, ...], *, check_format: bool = False
) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise ManifestInvalid(prefix.rstrip(".") or DOCUMENT, "must be a JSON object")
    if check_format:
        # Before anything else: a future format deserves "unknown format", not "missing field".
        for name, expected in (("format", FORMAT), ("format_version", FORMAT_VERSION)):
            found = document.get(name)
            if found != expected or isinstance(found, bool):
                raise ManifestInvalid(name, f"must be {expected!r}, got {found!r}")
    for name in names:
        if name not in document:
            raise ManifestInvalid(prefix + name, "is missing")
    unknown = sorted(set(document) - set(names))
    if unknown:
        raise ManifestInvalid(prefix + unknown[0], f"is not a field of format {FORMAT_VERSION}")
    return document


def _check_version(version: object) -> None:
    match = _VERSION.fullmatch(version) if isinstance(version, str) else None
    if match is None:
        raise ManifestInvalid(
            "version", f"must be <YYYYMMDDTHHMMSSZ>-<8 hex of onnx_sha256>, got {version!r}"
        )
    try:
        datetime.strptime(match.group(1), _VERSION_TIME)
    except ValueError:
        raise ManifestInvalid("version", f"has no valid UTC time: {version!r}") from None


def _symbol(symbol: object) -> str:
    if not isinstance(symbol, str) or not _SYMBOL.fullmatch(symbol):
        raise ManifestInvalid("symbol", f"must be upper-case, like BTCUSDT, got {symbol!r}")
    return symbol


def _check_created_at(created_at: object) -> None:
    problem = f"must be UTC ISO 8601 ending in Z (2026-01-02T00:05:12Z), got {created_at!r}"
    if not isinstance(created_at, str) or not created_at.endswith("Z") or "T" not in created_at:
        raise ManifestInvalid("created_at", problem)
    try:
        datetime.fromisoformat(created_at)
    except ValueError:
        raise ManifestInvalid("created_at", problem) from None


def _contract(version: object) -> FeatureContract:
    if not isinstance(version, int) or isinstance(version, bool):
        raise ManifestInvalid("feature_contract.version", f"must be an integer, got {version!r}")
    try:
        return load_contract(version)
    except (FileNotFoundError, ValueError):
        raise ManifestInvalid(
            "feature_contract.version", f"names no known feature contract: {version!r}"
        ) from None


def _input_names(names: object, contract: FeatureContract) -> tuple[str, ...]:
    if not isinstance(names, list | tuple) or not all(isinstance(name, str) for name in names):
        raise ManifestInvalid("feature_contract.inputs", f"must be a list of names, got {names!r}")
    expected = contract.model_inputs
    if tuple(names) != expected:
        position = next(
            (i for i, pair in enumerate(zip(names, expected, strict=False)) if pair[0] != pair[1]),
            min(len(names), len(expected)),
        )
        found = names[position] if position < len(names) else "<end>"
        wanted = expected[position] if position < len(expected) else "<end>"
        raise ManifestInvalid(
            "feature_contract.inputs",
            f"differ from contract v{contract.version} model inputs at position {position}: "
            f"{found!r} where the contract has {wanted!r}",
        )
    return expected


def _real(field: str, value: object) -> float:
    if not isinstance(value, numbers.Real) or isinstance(value, bool | np.bool_):
        raise ManifestInvalid(field, f"must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ManifestInvalid(field, f"must be finite, got {number!r}")
    return number


def _reals(field: str, values: object, length: int, per: str) -> tuple[float, ...]:
    if isinstance(values, np.ndarray):
        values = values.tolist()
    if not isinstance(values, list | tuple):
        raise ManifestInvalid(field, f"must be a list of numbers, got {type(values).__name__}")
    if len(values) != length:
        raise ManifestInvalid(field, f"has {len(values)} values, expected {length}, one per {per}")
    return tuple(_real(f"{field}[{index}]", value) for index, value in enumerate(values))


def _golden_inputs(rows: object, width: int, per: str) -> tuple[tuple[float, ...], ...]:
    if isinstance(rows, np.ndarray):
        rows = rows.tolist()
    if not isinstance(rows, list | tuple) or not rows:
        raise ManifestInvalid("golden.inputs", "must be a non-empty list of rows")
    checked = tuple(_reals(f"golden.inputs[{i}]", row, width, per) for i, row in enumerate(rows))
    for i, row in enumerate(checked):
        for j, value in enumerate(row):
            # The model sees float32; a golden input that is not one would test another input.
            if float(np.float32(value)) != value:
                raise ManifestInvalid(
                    f"golden.inputs[{i}][{j}]", f"is not float32-representable: {value!r}"
                )
    return checked


def _json_object(field: str, value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ManifestInvalid(field, f"must be a JSON object, got {type(value).__name__}")

    def numpy_scalar(item: object) -> object:
        if isinstance(item, np.generic):
            return item.item()
        raise TypeError(f"{type(item).__name__} is not JSON")

    try:
        text = json.dumps(value, allow_nan=False, default=numpy_scalar)
    except (TypeError, ValueError) as error:
        raise ManifestInvalid(field, f"is not plain JSON: {error}") from None
    return json.loads(text)


def _check_onnx_sha256(onnx_sha256: object, version: str) -> None:
    if onnx_sha256 == "":
        return
    if not isinstance(onnx_sha256, str) or not _SHA256.fullmatch(onnx_sha256):
        raise ManifestInvalid(
            "onnx_sha256", f"must be 64 lowercase hex digits, got {onnx_sha256!r}"
        )
    if not version.endswith(f"-{onnx_sha256[:8]}"):
        raise ManifestInvalid(
            "version", f"{version!r} does not end with onnx_sha256's first 8 hex {onnx_sha256[:8]}"
        )


def _sorted(value: object) -> object:
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value
