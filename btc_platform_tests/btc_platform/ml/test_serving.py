"""Promotion and rollback against a real store directory, a real SQLite Iceberg catalog and
a private Redis: the pointer file, Redis and the registry rows move together."""

from __future__ import annotations

import pytest

pytest.importorskip("pyiceberg", reason="the batch extra is not installed")

from btc_platform.lakehouse.catalog import open_catalog
from btc_platform.ml.pointer import PromotionRefused, Stage, rollback
from btc_platform.ml.production_key import ProductionKey
from btc_platform.ml.serving import promote, reconcile, roll_back
from btc_platform.ml.store import ModelStore
from btc_platform.settings import LakehouseSettings
from btc_platform_tests.btc_platform.ml.registered import NOW, SYMBOL, register, stages
from btc_platform_tests.support.redis_server import free_port
from realtime.state.keys import Keys
from realtime.state.redis_connection import RedisConnection

KEY = Keys(SYMBOL).model_current
SHORT_TIMEOUT_S = 0.5
"""For a Redis that is down or paused: the tests wait for the timeout, never measure it."""


@pytest.fixture
def world(tmp_path, redis_client):
    catalog = open_catalog(LakehouseSettings(data_dir=tmp_path / "lake"))
    store = ModelStore.open(str(tmp_path / "models"))
    return catalog, store, ProductionKey(redis_client)


def test_promotion_moves_pointer_redis_and_registry_together(world, tmp_path):
    catalog, store, key = world
    register(catalog, store, tmp_path / "bundles", "v1", promotable=True)
    moved = promote(store, catalog, key, SYMBOL, "v1", now=NOW)
    pointer = moved.pointer

    assert pointer.production == "v1"
    assert store.read_pointer(SYMBOL) == pointer
    assert key.read(SYMBOL) == "v1"
    assert stages(catalog) == {"v1": "production"}
    assert [h["stage"] for h in pointer.history] == ["shadow", "canary", "production"]
    assert moved.registry_changes == {"v1": (Stage.CANDIDATE, Stage.PRODUCTION)}
    assert moved.redis.synced


def test_promotion_can_stop_at_a_stage(world, tmp_path):
    catalog, store, key = world
    register(catalog, store, tmp_path / "bundles", "v1", promotable=True)
    pointer = promote(store, catalog, key, SYMBOL, "v1", through=Stage.CANARY, now=NOW).pointer
    assert (pointer.canary, pointer.production) == ("v1", None)
    assert key.read(SYMBOL) is None  # nothing serves yet
    assert stages(catalog) == {"v1": "canary"}


def test_an_unpromotable_version_changes_nothing(world, tmp_path):
    catalog, store, key = world
    register(catalog, store, tmp_path / "bundles", "v1", promotable=True)
    promote(store, catalog, key, SYMBOL, "v1", now=NOW)
    register(catalog, store, tmp_path / "bundles", "v2", promotable=False)
    with pytest.raises(PromotionRefused):
        promote(store, catalog, key, SYMBOL, "v2", now=NOW)
    assert store.read_pointer(SYMBOL).production == "v1"
    assert key.read(SYMBOL) == "v1"
    assert stages(catalog) == {"v1": "production", "v2": "candidate"}


def test_rollback_is_one_action(world, tmp_path):
    catalog, store, key = world
    for version in ("v1", "v2"):
        register(catalog, store, tmp_path / "bundles", version, promotable=True)
        promote(store, catalog, key, SYMBOL, version, now=NOW)
    assert stages(catalog) == {"v1": "retired", "v2": "production"}

    pointer = roll_back(store, catalog, key, SYMBOL, now=NOW).pointer
    assert pointer.production == "v1"
    assert store.read_pointer(SYMBOL).production == "v1"
    assert key.read(SYMBOL) == "v1"
    assert stages(catalog) == {"v1": "production", "v2": "retired"}


def test_a_version_at_a_stage_is_never_moved_past_the_stage_asked_for(world, tmp_path):
    catalog, store, key = world
    register(catalog, store, tmp_path / "bundles", "v1", promotable=True)
    promote(store, catalog, key, SYMBOL, "v1", through=Stage.CANARY, now=NOW)
    with pytest.raises(PromotionRefused, match="already canary"):
        promote(store, catalog, key, SYMBOL, "v1", through=Stage.SHADOW, now=NOW)
    assert (store.read_pointer(SYMBOL).canary, store.read_pointer(SYMBOL).production) == (
        "v1",
        None,
    )
    assert stages(catalog) == {"v1": "canary"}


def test_redis_down_is_reported_and_the_promotion_stands(world, tmp_path):
    catalog, store, key = world
    register(catalog, store, tmp_path / "bundles", "v1", promotable=True)
    down = ProductionKey.connect(
        RedisConnection(f"redis://127.0.0.1:{free_port()}/0"), timeout_s=SHORT_TIMEOUT_S
    )
    moved = promote(store, catalog, down, SYMBOL, "v1", now=NOW)
    assert not moved.redis.synced
    assert "ConnectionError" in moved.redis.problem
    assert store.read_pointer(SYMBOL).production == "v1"
    assert stages(catalog) == {"v1": "production"}

    # Redis back: the next move (here a reconcile) copies what the pointer says.
    assert reconcile(store, catalog, key, SYMBOL, now=NOW).redis.synced
    assert key.read(SYMBOL) == "v1"


def test_redis_paused_is_reported_and_the_rollback_stands(world, tmp_path, paused_redis):
    catalog, store, key = world
    for version in ("v1", "v2"):
        register(catalog, store, tmp_path / "bundles", version, promotable=True)
        promote(store, catalog, key, SYMBOL, version, now=NOW)
    with ProductionKey.connect(
        RedisConnection(paused_redis.url), timeout_s=SHORT_TIMEOUT_S
    ) as paused:
        moved = roll_back(store, catalog, paused, SYMBOL, now=NOW)
    assert not moved.redis.synced
    assert "Timeout" in moved.redis.problem
    assert store.read_pointer(SYMBOL).production == "v1"
    assert stages(catalog) == {"v1": "production", "v2": "retired"}
    assert key.read(SYMBOL) == "v2"  # the copy that missed the rollback, until reconciled
    reconcile(store, catalog, key, SYMBOL, now=NOW)
    assert key.read(SYMBOL) == "v1"


def test_reconcile_repairs_a_registry_a_crash_left_behind(world, tmp_path):
    catalog, store, key = world
    for version in ("v1", "v2"):
        register(catalog, store, tmp_path / "bundles", version, promotable=True)
        promote(store, catalog, key, SYMBOL, version, now=NOW)
    # The state a crash right after a rollback's pointer replace leaves behind.
    store.write_pointer(rollback(store.read_pointer(SYMBOL), now=NOW))
    assert stages(catalog) == {"v1": "retired", "v2": "production"}

    moved = reconcile(store, catalog, key, SYMBOL, now=NOW)
    assert moved.registry_changes == {
        "v1": (Stage.RETIRED, Stage.PRODUCTION),
        "v2": (Stage.PRODUCTION, Stage.RETIRED),
    }
    assert stages(catalog) == {"v1": "production", "v2": "retired"}
    assert key.read(SYMBOL) == "v1"
    assert reconcile(store, catalog, key, SYMBOL, now=NOW).registry_changes == {}


def test_a_missing_pointer_is_not_started_afresh_while_the_registry_says_a_version_serves(
    world, tmp_path
):
    catalog, store, key = world
    for version in ("v1", "v2"):
        register(catalog, store, tmp_path / "bundles", version, promotable=True)
    promote(store, catalog, key, SYMBOL, "v1", now=NOW)
    elsewhere = ModelStore.open(str(tmp_path / "another_store"))
    with pytest.raises(PromotionRefused, match="BTC_MODEL_STORE"):
        promote(elsewhere, catalog, key, SYMBOL, "v2", now=NOW)
    assert elsewhere.read_pointer(SYMBOL) is None
    assert stages(catalog) == {"v1": "production", "v2": "candidate"}


def test_a_version_is_stored_once(world, tmp_path):
    catalog, store, _ = world
    register(catalog, store, tmp_path / "bundles", "v1", promotable=True)
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
