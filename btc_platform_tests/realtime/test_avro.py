"""Avro payloads: every schema parses, events round-trip through bus and archive formats."""

from __future__ import annotations

import io
import math

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from btc_platform_tests.realtime.binance.sbe_strategies import (
    INT64,
    NON_NEGATIVE_INT64,
    SYMBOLS,
    TIME_US,
    best_bid_asks,
    depth_diffs,
    depth_snapshots,
)
from realtime.market import avro
from realtime.market.events import AggTrade, DepthSnapshot, Trade

trades = st.builds(
    Trade, SYMBOLS, NON_NEGATIVE_INT64, INT64, INT64, st.booleans(), TIME_US, TIME_US, st.booleans()
)
agg_trades = st.builds(
    AggTrade,
    SYMBOLS,
    NON_NEGATIVE_INT64,
    INT64,
    INT64,
    NON_NEGATIVE_INT64,
    NON_NEGATIVE_INT64,
    TIME_US,
    st.booleans(),
    st.booleans(),
)
rest_snapshots = depth_snapshots.map(lambda snapshot: snapshot._replace(event_time_us=None))
events = st.one_of(trades, agg_trades, best_bid_asks, depth_diffs, depth_snapshots, rest_snapshots)


@pytest.mark.parametrize("name", avro.SCHEMA_NAMES)
def test_every_schema_is_shipped_and_parses(name):
    parsed = avro.schema(name)
    field_names = [field["name"] for field in parsed["fields"]]
    assert field_names[-3:] == ["source", "ingest_ts_us", "version"]


def test_unknown_schema_is_a_clear_error():
    with pytest.raises(KeyError, match="no Avro schema named 'Nope'"):
        avro.schema("Nope")


def test_market_schemas_hold_prices_and_quantities_as_fixed_point_longs():
    for name in ("MarketTrade", "AggTrade", "BestBidAsk"):
        types = {field["name"]: field["type"] for field in avro.schema(name)["fields"]}
        money = {key: value for key, value in types.items() if key.endswith("_e8")}
        assert money, name
        assert set(money.values()) == {"long"}, name


@settings(max_examples=200)
@given(events, TIME_US)
def test_events_round_trip_through_bus_payloads(event, ingest_ts_us):
    payload = avro.encode_event(event, source="sbe", ingest_ts_us=ingest_ts_us)
    name = avro.EVENT_SCHEMAS[type(event)]
    assert avro.decode_event(name, payload) == event
    record = avro.decode_record(name, payload)
    assert (record["source"], record["ingest_ts_us"], record["version"]) == ("sbe", ingest_ts_us, 1)


def test_events_round_trip_through_an_archive_container():
    snapshot = DepthSnapshot("BTCUSDT", None, 42, ((100, 2), (99, 3)), ((101, 1),))
    records = [avro.event_to_record(snapshot, source="rest", ingest_ts_us=7)] * 3
    buffer = io.BytesIO()
    avro.write_container(buffer, "DepthSnapshot", records)
    buffer.seek(0)
    back = list(avro.read_container(buffer))
    assert [avro.record_to_event("DepthSnapshot", record) for record in back] == [snapshot] * 3


def feature_record(**values: object) -> dict:
    """A FeatureVector1s record: every float feature set to ``fill``, ints and envelope filled."""
    fill = values.pop("fill", 0.0)
    record = {field["name"]: fill for field in avro.schema("FeatureVector1s")["fields"]}
    ints = (
        "n_trades_1s",
        "n_trades_5s",
        "burst_1s",
        "large_trade_flag_5s",
        "time_since_last_trade_ms",
    )
    record.update(dict.fromkeys(ints, 0))
    record.update(symbol="BTCUSDT", ts_sec=1767225600, contract_version="1", spread=None)
    record.update(source="replay", ingest_ts_us=1, version=1)
    record.update(values)
    return record


def test_feature_and_prediction_records_round_trip():
    features = feature_record(
        n_trades_1s=3, n_trades_5s=9, burst_1s=1, ret_1s=-1.25e-5, spread=0.01
    )
    assert (
        avro.decode_record("FeatureVector1s", avro.encode_record("FeatureVector1s", features))
        == features
    )
    prediction = {
        "symbol": "BTCUSDT",
        "ts_sec": 1767225600,
        "yhat_log_return_10s": None,
        "latency_ms": 1.5,
        "model_version": "v3",
        "fallback_level": 5,
        "feature_age_ms": 4200,
        "reason": "safe mode: hot state lost",
        "source": "infer",
        "ingest_ts_us": 2,
        "version": 1,
    }
    payload = avro.encode_record("Prediction1s", prediction)
    assert avro.decode_record("Prediction1s", payload) == prediction


def test_a_record_missing_a_field_is_refused():
    with pytest.raises(ValueError, match="no value and no default"):
        avro.encode_record("BestBidAsk", {"symbol": "BTCUSDT"})


def test_nan_features_survive_exactly():
    features = feature_record(fill=math.nan)
    back = avro.decode_record("FeatureVector1s", avro.encode_record("FeatureVector1s", features))
    assert math.isnan(back["ret_1s"])
    assert fastavro.validation.validate(back, avro.schema("FeatureVector1s"))
