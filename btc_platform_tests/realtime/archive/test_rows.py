"""Events as capture rows: every field kept, in fixed point, with the envelope."""

import pytest

from btc_platform_tests.realtime.archive.events import DAY_START_US, SYMBOL
from realtime.archive import schemas
from realtime.archive.rows import market_batch, predictions_batch
from realtime.inference.prediction import Prediction
from realtime.market.events import DepthDiff, DepthSnapshot, Trade


def _us(value) -> int:
    return int(value.timestamp() * 1_000_000)


def test_a_rest_snapshot_without_time_is_placed_at_its_capture_time():
    events = [
        DepthDiff(SYMBOL, DAY_START_US, 10, 12, ((5, 1), (4, 2)), ()),
        DepthSnapshot(SYMBOL, None, 12, ((5, 1),), ((6, 3),)),
    ]
    batch = market_batch("depth", events, source="sbe", ingest_ts_us=DAY_START_US + 7)
    assert batch.schema == schemas.DEPTH_SCHEMA
    rows = batch.to_pylist()
    assert [row["first_update_id"] for row in rows] == [10, None]
    assert [row["snapshot"] for row in rows] == [False, True]
    assert [_us(row["event_time"]) for row in rows] == [DAY_START_US, DAY_START_US + 7]
    assert rows[0]["bids"] == [{"price_e8": 5, "qty_e8": 1}, {"price_e8": 4, "qty_e8": 2}]
    assert rows[0]["asks"] == []


def test_trades_keep_both_times_and_carry_the_envelope():
    trade = Trade(SYMBOL, 42, 9_000_000_000_000, 1_000, True, DAY_START_US, DAY_START_US + 3)
    (row,) = market_batch(
        "trades", [trade], source="sbe", ingest_ts_us=DAY_START_US + 9
    ).to_pylist()
    assert _us(row["transact_time"]) == DAY_START_US
    assert _us(row["event_time"]) == DAY_START_US + 3
    assert (row["source"], _us(row["ingest_ts"]), row["version"]) == ("sbe", DAY_START_US + 9, 1)


def test_a_safe_mode_prediction_has_a_null_forecast_and_its_tick_as_ingest_time():
    prediction = Prediction(SYMBOL, 1_767_225_600, None, 2.5, "", 5, 900, "no features", 17)
    (row,) = predictions_batch([prediction]).to_pylist()
    assert row["yhat_log_return_10s"] is None
    assert row["source"] == "live"
    assert _us(row["tick_time"]) == _us(row["ingest_ts"]) == 17


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="not a market capture kind"):
        market_batch("klines", [], source="sbe", ingest_ts_us=0)
