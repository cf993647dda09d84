"""The model's life through Dagster on generated markets: with the planted signal the
candidate beats every baseline on test and is promoted; with the signal off the gate
refuses and nothing is promoted. The promoted bundle loads where neither torch nor Dagster
can be imported, and a model.onnx with one byte changed is refused.

Each market is served by the local exchange and goes through the real lakehouse assets
(bronze by REST, silver, gold) before the model assets run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

dg = pytest.importorskip("dagster", reason="the batch extra is not installed")
pytest.importorskip("torch", reason="the batch extra is not installed")

import redis  # noqa: E402

from btc_platform.definitions import build_definitions  # noqa: E402
from btc_platform.defs.constants import (  # noqa: E402
    BRONZE_AGG_TRADES,
    GOLD_TRAINING_1S,
    MODEL_CANDIDATE,
    ONNX_MATCHES_TORCH,
    PRODUCTION_MODEL,
    PROMOTION_GATE,
    SILVER_BARS_1S,
    SILVER_FEATURES_1S,
    SILVER_TRADES,
    SINGLE_ROW_LATENCY,
)
from btc_platform.defs.resources import (  # noqa: E402
    BinanceResource,
    LakehouseResource,
    ModelStoreResource,
    RedisResource,
)
from btc_platform.ml import registry  # noqa: E402
from btc_platform_tests.support.dagster_backfill import IN_PROCESS  # noqa: E402
from btc_platform_tests.support.exchange_thread import serve_in_thread  # noqa: E402
from btc_platform_tests.support.torch_free import load_without_batch_packages  # noqa: E402
from realtime.inference.bundle import load_bundle  # noqa: E402
from realtime.inference.errors import ChecksumMismatch  # noqa: E402
from realtime.sim.exchange import ExchangeConfig  # noqa: E402
from realtime.sim.market_model import MarketModel, MarketParams  # noqa: E402
from realtime.state.keys import Keys  # noqa: E402

pytestmark = pytest.mark.slow

SYMBOL = "BTCUSDT"
DAY = "2026-01-01"
MARKET_START_US = 1_767_225_600_000_000  # 2026-01-01T00:00Z
LAKE_ASSETS = [SILVER_TRADES, SILVER_BARS_1S, SILVER_FEATURES_1S, GOLD_TRAINING_1S]
BASELINES = ("zero", "momentum", "linear")


@dataclass
class Trained:
    result: dg.ExecuteInProcessResult
    lakehouse: LakehouseResource
    model_store: ModelStoreResource
    redis_url: str
    tmp: Path
    defs: dg.Definitions
    instance: dg.DagsterInstance

    @property
    def candidate(self) -> dict:
        (event,) = [
            e
            for e in self.result.get_asset_materialization_events()
            if e.asset_key == MODEL_CANDIDATE
        ]
        return {k: v.value for k, v in event.materialization.metadata.items()}

    def checks(self) -> dict[str, bool]:
        return {e.check_name: e.passed for e in self.result.get_asset_check_evaluations()}


def train_on_market(tmp: Path, redis_url: str, *, signal: float, hours: int) -> Trained:
    """Serve ``hours`` of market, load them through the lakehouse, run the model assets."""
    params = MarketParams(seed=7, start_time_us=MARKET_START_US, signal_strength=signal)
    config = ExchangeConfig(speed=0, history_s=hours * 3600 + 60, weight_limit=None)
    with serve_in_thread(MarketModel(params), config) as exchange:
        lakehouse = LakehouseResource(data_dir=str(tmp / "lake"))
        model_store = ModelStoreResource(location=str(tmp / "models"))
        defs = build_definitions(
            resources={
                "lakehouse": lakehouse,
                "binance": BinanceResource(
                    rest_url=exchange.url, archive_url=exchange.url, data_dir=str(tmp)
                ),
                "model_store": model_store,
                "redis": RedisResource(url=redis_url),
            }
        )
        job = defs.resolve_implicit_global_asset_job_def()
        instance = dg.DagsterInstance.ephemeral()
        bronze = job.execute_in_process(
            instance=instance,
            asset_selection=[BRONZE_AGG_TRADES],
            run_config=IN_PROCESS,
            tags={
                "dagster/asset_partition_range_start": f"{DAY}-00:00",
                "dagster/asset_partition_range_end": f"{DAY}-{hours - 1:02d}:00",
            },
        )
        assert bronze.success
        lake = job.execute_in_process(
            instance=instance, partition_key=DAY, asset_selection=LAKE_ASSETS, run_config=IN_PROCESS
        )
        assert lake.success
    result = job.execute_in_process(
        instance=instance,
        asset_selection=[MODEL_CANDIDATE, PRODUCTION_MODEL],
        run_config=IN_PROCESS,
        raise_on_error=False,
    )
    return Trained(result, lakehouse, model_store, redis_url, tmp, defs, instance)


@pytest.fixture(scope="module")
def with_signal(tmp_path_factory, redis_server) -> Trained:
    url = redis_server.url.removesuffix("/0") + "/3"  # a database of its own
    return train_on_market(tmp_path_factory.mktemp("signal"), url, signal=1.0, hours=20)


@pytest.fixture(scope="module")
def without_signal(tmp_path_factory, redis_server) -> Trained:
    url = redis_server.url.removesuffix("/0") + "/4"
    return train_on_market(tmp_path_factory.mktemp("noise"), url, signal=0.0, hours=8)


def test_with_the_planted_signal_the_candidate_beats_every_baseline_and_is_promoted(with_signal):
    assert with_signal.result.success
    assert with_signal.checks() == {
        ONNX_MATCHES_TORCH: True,
        SINGLE_ROW_LATENCY: True,
        PROMOTION_GATE: True,
    }
    version = with_signal.candidate["model_version"]
    entry = registry.entry(with_signal.lakehouse.catalog(), SYMBOL, version)
    test = entry.metrics["test"]
    for baseline in BASELINES:
        assert test["model"]["mae"] < test[baseline]["mae"], baseline
    for baseline in ("momentum", "linear"):  # zero makes no directional call
        assert test["model"]["hit_rate"] > test[baseline]["hit_rate"], baseline
    assert test["model"]["hit_rate"] > 0.55

    pointer = with_signal.model_store.store().read_pointer(SYMBOL)
    assert pointer.production == version
    assert entry.stage.value == "production"
    client = redis.Redis.from_url(with_signal.redis_url)
    assert client.get(Keys(SYMBOL).model_current) == version.encode()


def test_with_the_signal_off_the_gate_refuses_and_nothing_is_promoted(without_signal):
    checks = without_signal.checks()
    assert checks[PROMOTION_GATE] is False
    assert checks[ONNX_MATCHES_TORCH]
    assert checks[SINGLE_ROW_LATENCY]
    assert not without_signal.result.success  # the blocking gate stopped the promotion step
    version = without_signal.candidate["model_version"]
    assert without_signal.candidate["promotable"] is False
    entry = registry.entry(without_signal.lakehouse.catalog(), SYMBOL, version)
    assert entry.promotable is False
    assert any(reason.startswith("FAIL") for reason in entry.gate_reasons)
    assert entry.stage.value == "candidate"
    assert without_signal.model_store.store().read_pointer(SYMBOL) is None
    client = redis.Redis.from_url(without_signal.redis_url)
    assert client.get(Keys(SYMBOL).model_current) is None


def test_the_promoted_bundle_loads_without_torch_or_dagster(with_signal, tmp_path):
    version = with_signal.candidate["model_version"]
    bundle = with_signal.model_store.store().fetch_bundle(SYMBOL, version, tmp_path)
    child = load_without_batch_packages(bundle)
    assert child["batch_modules"] == []
    np.testing.assert_allclose(child["yhat"], child["golden"], rtol=0, atol=1e-6)
    assert len(child["golden"]) == 16


def test_a_model_with_one_byte_changed_is_refused(with_signal, tmp_path):
    version = with_signal.candidate["model_version"]
    bundle = with_signal.model_store.store().fetch_bundle(SYMBOL, version, tmp_path)
    load_bundle(bundle)  # intact: loads
    model = bundle / "model.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    with pytest.raises(ChecksumMismatch, match=r"model\.onnx"):
        load_bundle(bundle)


def test_the_incremental_update_refits_only_the_output_layer_of_the_production_model(
    with_signal,
):
    import onnx
    from onnx import numpy_helper

    store = with_signal.model_store.store()
    base = store.read_pointer(SYMBOL).production
    job = with_signal.defs.resolve_job_def("incremental_update")
    result = job.execute_in_process(
        instance=with_signal.instance, run_config=IN_PROCESS, raise_on_error=False
    )
    events = result.get_asset_materialization_events()
    (candidate,) = [e for e in events if e.asset_key == MODEL_CANDIDATE]
    metadata = {k: v.value for k, v in candidate.materialization.metadata.items()}
    assert metadata["training"] == "incremental"
    assert metadata["base_version"] == base
    assert metadata["model_version"] != base

    def weights(version: str) -> dict[str, np.ndarray]:
        bundle = store.fetch_bundle(SYMBOL, version, with_signal.tmp / "weights")
        graph = onnx.load(str(bundle / "model.onnx")).graph
        return {init.name: numpy_helper.to_array(init) for init in graph.initializer}

    before, after = weights(base), weights(metadata["model_version"])
    frozen = [name for name in before if not name.startswith("mlp.6.")]
    assert all(np.array_equal(before[name], after[name]) for name in frozen)
    assert not np.array_equal(before["mlp.6.weight"], after["mlp.6.weight"])
    manifest = load_bundle(
        store.fetch_bundle(SYMBOL, metadata["model_version"], with_signal.tmp / "m")
    ).manifest
    assert manifest.training["rows"]["train"] < 6 * 3600  # the newest six hours only


def test_rollback_from_the_command_line_is_one_action(with_signal):
    """Train and promote a second version, then roll back with ``btc-models rollback``."""
    import os
    import subprocess
    import sys

    store = with_signal.model_store.store()
    first = store.read_pointer(SYMBOL).production
    job = with_signal.defs.resolve_job_def("train_and_promote")
    config = {**IN_PROCESS, "ops": {"ml__model_candidate": {"config": {"seed": 11}}}}
    assert job.execute_in_process(instance=with_signal.instance, run_config=config).success
    second = store.read_pointer(SYMBOL).production
    assert second != first

    environment = {
        **os.environ,
        "BTC_DATA_DIR": with_signal.lakehouse.data_dir,
        "BTC_MODEL_STORE": with_signal.model_store.location,
        "BTC_REDIS_URL": with_signal.redis_url,
    }
    result = subprocess.run(
        [sys.executable, "-m", "btc_platform.ml.cli", "rollback"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    pointer = store.read_pointer(SYMBOL)
    assert pointer.production == first
    assert pointer.history[-1]["action"] == "rollback"
    client = redis.Redis.from_url(with_signal.redis_url)
    assert client.get(Keys(SYMBOL).model_current) == first.encode()
    stages = {
        e.model_version: e.stage.value
        for e in registry.entries(with_signal.lakehouse.catalog(), SYMBOL)
    }
    assert stages[first] == "production"
    assert stages[second] == "retired"
