"""The contract file: ordered, complete, consistent with the engine and the Avro record."""

from __future__ import annotations

from realtime.features.contract import CONTRACT_V1, load_contract
from realtime.features.engine import FEATURES
from realtime.market import avro

SEED_SCHEMA_V1 = [
    "ret_1s",
    "ret_2s",
    "ret_5s",
    "vwap_5s_dev",
    "n_trades_1s",
    "n_trades_5s",
    "buy_vol_1s",
    "sell_vol_1s",
    "tvi_1s",
    "buy_vol_5s",
    "sell_vol_5s",
    "tvi_5s",
    "avg_trade_size_1s",
    "vol_ret_10s",
    "burst_1s",
    "large_trade_flag_5s",
    "time_since_last_trade_ms",
    "last_price_minus_1s",
    "last_price_minus_5s",
    "spread",
]


def test_v1_has_the_seed_features_in_order():
    assert list(CONTRACT_V1.names) == SEED_SCHEMA_V1
    assert CONTRACT_V1.version == 1
    assert CONTRACT_V1.names == FEATURES


def test_every_feature_is_fully_specified():
    for feature in CONTRACT_V1.document["features"]:
        assert {
            "name",
            "unit",
            "definition",
            "null_when",
            "window_s",
            "model_input",
        } <= feature.keys()
        assert feature["definition"]
        assert feature["unit"]


def test_spread_is_not_a_model_input_of_v1():
    assert "spread" not in CONTRACT_V1.model_inputs
    assert len(CONTRACT_V1.model_inputs) == 19
    assert CONTRACT_V1.model_input_indices == tuple(range(19))


def test_avro_feature_record_carries_the_contract_in_order():
    fields = [field["name"] for field in avro.schema("FeatureVector1s")["fields"]]
    assert fields[3 : 3 + len(FEATURES)] == list(FEATURES)


def test_contract_is_loaded_once():
    assert load_contract(1) is CONTRACT_V1
