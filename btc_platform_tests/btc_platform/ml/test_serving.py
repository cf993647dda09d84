"""Promotion and rollback against a real store directory, a real SQLite Iceberg catalog and
a private Redis: the pointer file, Redis and the registry rows move together."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

pytest.importorskip("pyiceberg", reason="the batch extra is not installed")

from btc_platform.lakehouse.catalog import open_catalog
from btc_platform.ml import registry
from btc_platform.ml.pointer import PromotionRefused, Stage
from btc_platform.ml.registry import RegistryEntry
from btc_platform.ml.serving import current_key, promote, roll_back
from btc_platform.ml.store import ModelStore
from btc_platform.settings import LakehouseSettings

NOW = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
SYMBOL = "BTCUSDT"


def register(catalog, store: ModelStore, tmp_path: Path, version: str, promotable: bool) -> None:
    bundle = tmp_path / "bundles" / version
    bundle.mkdir(parents=True)
    (bundle / "model.onnx").write_bytes(b"onnx " + version.encode())
    (bundle / "manifest.json").write_text(json.dumps({"version": version}))
    uri = store.put_bundle(SYMBOL, version, bundle)
    registry.record(
        catalog,
        RegistryEntry(
            symbol=SYMBOL,
            model_version=version,
            created_at=NOW,
            stage=Stage.CANDIDATE,
            promotable=promotable,
            gate_reasons=["test"],
            contract_version=1,
            onnx_sha256="0" * 64,
            bundle_uri=uri,
            train_start=NOW,
            test_end=NOW,
            test_mae=1e-4,
            test_hit_rate=0.6,
            zero_mae=2e-4,
            metrics={},
            lineage={},
        ),
        NOW,
    )


@pytest.fixture
def world(tmp_path, redis_client):
    catalog = open_catalog(LakehouseSettings(data_dir=tmp_path / "lake"))
    store = ModelStore.open(str(tmp_path / "models"))
    return catalog, store, redis_client


def stages(catalog) -> dict[str, str]:
    return {e.model_version: e.stage.value for e in registry.entries(catalog, SYMBOL)}


def test_promotion_moves_pointer_redis_and_registry_together(world, tmp_path):
    catalog, store, redis_client = world
    register(catalog, store, tmp_path, "v1", promotable=True)
    pointer = promote(store, catalog, redis_client, SYMBOL, "v1", now=NOW)

    assert pointer.production == "v1"
    assert store.read_pointer(SYMBOL) == pointer
    assert redis_client.get(current_key(SYMBOL)) == b"v1"
    assert stages(catalog) == {"v1": "production"}
    assert [h["stage"] for h in pointer.history] == ["shadow", "canary", "production"]


def test_promotion_can_stop_at_a_stage(world, tmp_path):
    catalog, store, redis_client = world
    register(catalog, store, tmp_path, "v1", promotable=True)
    pointer = promote(store, catalog, redis_client, SYMBOL, "v1", through=Stage.CANARY, now=NOW)
    assert (pointer.canary, pointer.production) == ("v1", None)
    assert redis_client.get(current_key(SYMBOL)) is None  # nothing serves yet
    assert stages(catalog) == {"v1": "canary"}


def test_an_unpromotable_version_changes_nothing(world, tmp_path):
    catalog, store, redis_client = world
    register(catalog, store, tmp_path, "v1", promotable=True)
    promote(store, catalog, redis_client, SYMBOL, "v1", now=NOW)
    register(catalog, store, tmp_path, "v2", promotable=False)
    with pytest.raises(PromotionRefused):
        promote(store, catalog, redis_client, SYMBOL, "v2", now=NOW)
    assert store.read_pointer(SYMBOL).production == "v1"
    assert redis_client.get(current_key(SYMBOL)) == b"v1"
    assert stages(catalog) == {"v1": "production", "v2": "candidate"}


def test_rollback_is_one_action(world, tmp_path):
    catalog, store, redis_client = world
    for version in ("v1", "v2"):
        register(catalog, store, tmp_path, version, promotable=True)
        promote(store, catalog, redis_client, SYMBOL, version, now=NOW)
    assert stages(catalog) == {"v1": "retired", "v2": "production"}

    pointer = roll_back(store, catalog, redis_client, SYMBOL, now=NOW)
    assert pointer.production == "v1"
    assert store.read_pointer(SYMBOL).production == "v1"
    assert redis_client.get(current_key(SYMBOL)) == b"v1"
    assert stages(catalog) == {"v1": "production", "v2": "retired"}


def test_a_version_is_stored_once(world, tmp_path):
    catalog, store, _ = world
    register(catalog, store, tmp_path, "v1", promotable=True)
    with pytest.raises(FileExistsError):
        store.put_bundle(SYMBOL, "v1", tmp_path / "bundles" / "v1")
    assert store.versions(SYMBOL) == ["v1"]
    copy = store.fetch_bundle(SYMBOL, "v1", tmp_path / "fetched")
    assert (copy / "model.onnx").read_bytes() == b"onnx v1"


def test_the_store_works_on_s3_too(tmp_path):
    """The production store: the same code on an S3 server (moto, in process)."""
    pytest.importorskip("moto", reason="the test extra is not installed")
    from btc_platform.ml.pointer import ModelPointer, advance
    from btc_platform_tests.support.moto_server import KEY_ID, REGION, SECRET, moto_server

    bundle = tmp_path / "v1"
    bundle.mkdir()
    (bundle / "model.onnx").write_bytes(b"onnx bytes")
    (bundle / "manifest.json").write_text("{}")
    with moto_server() as server:
        server.s3_client().create_bucket(Bucket="models")
        options = {
            "endpoint_override": server.endpoint,
            "region": REGION,
            "access_key": KEY_ID,
            "secret_key": SECRET,
        }
        store = ModelStore.open("s3://models/prod", options)
        assert store.put_bundle(SYMBOL, "v1", bundle) == "s3://models/prod/BTCUSDT/v1"
        pointer = advance(ModelPointer(SYMBOL), "v1", promotable=True, now=NOW)
        store.write_pointer(pointer)
        assert store.read_pointer(SYMBOL) == pointer
        assert store.versions(SYMBOL) == ["v1"]
        copy = store.fetch_bundle(SYMBOL, "v1", tmp_path / "fetched")
        assert (copy / "model.onnx").read_bytes() == b"onnx bytes"
        listing = server.s3_client().list_objects_v2(Bucket="models")["Contents"]
        # pyarrow marks directories with empty "dir/" objects; the files are what matter.
        keys = {o["Key"] for o in listing if not o["Key"].endswith("/")}
        assert keys == {
            "prod/BTCUSDT/v1/model.onnx",
            "prod/BTCUSDT/v1/manifest.json",
            "prod/BTCUSDT/current.json",
        }
