"""BundleManifest: built by the writer, parsed by the loader, one set of rules for both."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from btc_platform_tests.realtime.inference.examples import (
    MANIFEST_DEFECTS,
    PLACEHOLDER_SHA256,
    TEXT_DEFECTS,
    K,
    example_manifest,
)
from realtime.features.contract import CONTRACT_V1
from realtime.inference.errors import BundleRejected, ManifestInvalid
from realtime.inference.manifest import DOCUMENT, BundleManifest, bundle_version


def test_canonical_json_round_trips_to_an_equal_manifest():
    manifest = example_manifest()
    text = manifest.to_json()
    parsed = BundleManifest.from_json(text)
    assert parsed == manifest
    assert parsed.to_json() == text


def test_canonical_json_has_the_documented_layout():
    document = json.loads(example_manifest().to_json())
    assert list(document) == [
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
    ]
    assert document["format"] == "btc-platform-model-bundle"
    assert document["format_version"] == 1
    assert document["feature_contract"] == {
        "version": 1,
        "inputs": list(CONTRACT_V1.model_inputs),
        "label": "y_log_return_10s",
    }
    assert document["version"] == "20260102T000000Z-1a2b3c4d"
    assert len(document["golden"]["inputs"][0]) == K == 19


def test_writer_side_numpy_values_become_plain_json():
    manifest = example_manifest()
    assert all(type(value) is float for value in manifest.scaler_mean)
    assert all(type(value) is float for row in manifest.golden_inputs for value in row)
    assert type(manifest.metrics["test"]["model"]["n"]) is int
    assert type(manifest.gate["binomial_p_value"]) is float
    assert manifest.width == K


def test_free_form_objects_are_written_with_sorted_keys_whatever_the_insertion_order():
    forward = example_manifest(architecture={"kind": "mlp", "seed": 7})
    backward = example_manifest(architecture={"seed": 7, "kind": "mlp"})
    assert forward.to_json() == backward.to_json()


@given(st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=K, max_size=K))
def test_float32_values_round_trip_exactly(values):
    manifest = example_manifest(scaler_mean=np.asarray(values, dtype=np.float32))
    parsed = BundleManifest.from_json(manifest.to_json())
    assert np.array_equal(np.asarray(parsed.scaler_mean, dtype=np.float32), values)
    assert parsed.golden_inputs == manifest.golden_inputs


@pytest.mark.parametrize(
    ("mutate", "field"),
    [pytest.param(mutate, field, id=name) for name, mutate, field in MANIFEST_DEFECTS],
)
def test_each_defect_is_refused_naming_its_field(mutate, field):
    document = json.loads(example_manifest().to_json())
    mutate(document)
    with pytest.raises(ManifestInvalid) as raised:
        BundleManifest.from_json(json.dumps(document), source="store/v1/manifest.json")
    assert raised.value.field == field
    assert f"field {field!r}" in str(raised.value)
    assert str(raised.value).startswith("store/v1/manifest.json: ")
    assert isinstance(raised.value, BundleRejected)


@pytest.mark.parametrize(("text"), [pytest.param(text, id=name) for name, text in TEXT_DEFECTS])
def test_unparseable_documents_are_refused(text):
    with pytest.raises(ManifestInvalid) as raised:
        BundleManifest.from_json(text)
    assert raised.value.field == DOCUMENT


def test_duplicate_keys_are_refused_rather_than_silently_last_wins():
    text = (
        example_manifest()
        .to_json()
        .replace('"symbol": "BTCUSDT"', '"symbol": "BTCUSDT", "symbol": "ETHUSDT"')
    )
    with pytest.raises(ManifestInvalid, match="more than once") as raised:
        BundleManifest.from_json(text)
    assert raised.value.field == "symbol"


def test_error_names_the_offending_value():
    with pytest.raises(ManifestInvalid) as raised:
        example_manifest(scaler_scale=[1.0] * (K - 1) + [-0.25])
    assert raised.value.field == f"scaler.scale[{K - 1}]"
    assert "-0.25" in str(raised.value)
    assert raised.value.source == "manifest"


def test_writer_may_leave_the_digest_for_write_bundle_but_cannot_serialise_without_it():
    manifest = example_manifest(onnx_sha256="")
    with pytest.raises(ManifestInvalid) as raised:
        manifest.to_json()
    assert raised.value.field == "onnx_sha256"
    assert replace(manifest, onnx_sha256=PLACEHOLDER_SHA256) == example_manifest()


def test_non_finite_metrics_are_refused_at_construction_not_at_write_time():
    with pytest.raises(ManifestInvalid) as raised:
        example_manifest(metrics={"test": {"model": {"hit_rate": float("nan")}}})
    assert raised.value.field == "metrics"


def test_free_form_objects_are_copies_not_shared_with_the_caller():
    training = {"epochs": 3}
    manifest = example_manifest(training=training)
    training["epochs"] = 99
    assert manifest.training == {"epochs": 3}


def test_bundle_version_is_compact_utc_then_digest_prefix():
    sha = "deadbeef" + "0" * 56
    trained_at = datetime(2026, 1, 2, 1, 30, 5, tzinfo=timezone(timedelta(hours=1)))
    assert bundle_version(trained_at, sha) == "20260102T003005Z-deadbeef"
    assert bundle_version(trained_at.astimezone(UTC), sha) == "20260102T003005Z-deadbeef"
    with pytest.raises(ValueError, match="timezone-aware"):
        bundle_version(datetime(2026, 1, 2), sha)
    with pytest.raises(ValueError, match="64 lowercase hex"):
        bundle_version(trained_at, sha.upper())
