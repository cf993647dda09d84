"""The Dagster side of a move (``ml.production_model``, ``rollback_model``) with a Redis that is
down or paused: the run succeeds, the pointer and the registry agree, and the missed Redis
copy is in the metadata. Real Dagster, SQLite catalog, model store and redis-servers."""

from __future__ import annotations

from pathlib import Path

import pytest

dg = pytest.importorskip("dagster", reason="the batch extra is not installed")

from btc_platform.definitions import build_definitions  # noqa: E402
from btc_platform.defs.constants import PRODUCTION_MODEL  # noqa: E402
from btc_platform.defs.resources import LakehouseResource, ModelStoreResource, RedisResource  # noqa: E402
from btc_platform_tests.btc_platform.ml.registered import SYMBOL, register, stages  # noqa: E402
from btc_platform_tests.support.dagster_backfill import IN_PROCESS  # noqa: E402
from btc_platform_tests.support.redis_server import free_port  # noqa: E402


def definitions(tmp_path: Path, redis_url: str) -> tuple[dg.Definitions, LakehouseResource]:
    lakehouse = LakehouseResource(data_dir=str(tmp_path / "lake"), symbol=SYMBOL)
    model_store = ModelStoreResource(location=str(tmp_path / "models"))
    defs = build_definitions(
        resources={
            "lakehouse": lakehouse,
            "model_store": model_store,
            "redis": RedisResource(url=redis_url),
        }
    )
    return defs, lakehouse


def promote_newest(defs: dg.Definitions, instance: dg.DagsterInstance) -> dict:
    job = defs.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(
        instance=instance, asset_selection=[PRODUCTION_MODEL], run_config=IN_PROCESS
    )
    assert result.success
    (event,) = result.get_asset_materialization_events()
    return {k: v.value for k, v in event.materialization.metadata.items()}


def test_production_model_with_redis_down_promotes_and_says_redis_missed_it(tmp_path):
    defs, lakehouse = definitions(tmp_path, f"redis://127.0.0.1:{free_port()}/0")
    catalog, store = lakehouse.catalog(), ModelStoreResource(location=str(tmp_path / "models"))
    register(catalog, store.store(), tmp_path / "bundles", "v1", promotable=True)

    metadata = promote_newest(defs, dg.DagsterInstance.ephemeral())
    assert metadata["production"] == "v1"
    assert metadata["redis"].startswith("Redis not updated to v1")
    assert store.store().read_pointer(SYMBOL).production == "v1"
    assert stages(catalog) == {"v1": "production"}


def test_rollback_job_with_redis_paused_rolls_back_and_a_rolled_back_newest_stays_out(
    tmp_path, paused_redis
):
    defs, lakehouse = definitions(tmp_path, paused_redis.url)
    catalog, store = lakehouse.catalog(), ModelStoreResource(location=str(tmp_path / "models"))
    instance = dg.DagsterInstance.ephemeral()
    for version in ("v1", "v2"):
        register(catalog, store.store(), tmp_path / "bundles", version, promotable=True)
        promote_newest(defs, instance)

    rollback = defs.resolve_job_def("rollback_model").execute_in_process(instance=instance)
    assert rollback.success
    assert store.store().read_pointer(SYMBOL).production == "v1"
    assert stages(catalog) == {"v1": "production", "v2": "retired"}

    # The newest version is the one rolled back: the next scheduled promotion leaves it out.
    metadata = promote_newest(defs, instance)
    assert metadata["outcome"].startswith("v2 not promoted: v2 was rolled back")
    assert store.store().read_pointer(SYMBOL).production == "v1"
