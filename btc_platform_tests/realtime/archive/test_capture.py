"""Every kind round-trips through the capture writers and back, field for field."""

from __future__ import annotations

from pathlib import Path

import pytest

from btc_platform_tests.realtime.archive import events
from btc_platform_tests.realtime.archive.events import DAY_START_US, US_PER_S
from realtime.archive.capture import CaptureWriters
from realtime.archive.reader import read_segments
from realtime.clock import VirtualClock
from realtime.market.events import DepthSnapshot
from realtime.service.settings import RealtimeSettings

DAY = (DAY_START_US, DAY_START_US + 86_400 * US_PER_S)
INGEST_S = DAY_START_US / US_PER_S + 30


def _us(value) -> int:
    return int(value.timestamp()) * US_PER_S + value.microsecond


def _capture(tmp_path: Path, closed: list) -> CaptureWriters:
    return CaptureWriters(
        tmp_path,
        max_age_s=300,
        max_bytes=1 << 30,
        clock=VirtualClock(INGEST_S),
        on_segment_closed=lambda kind, path, rows: closed.append((kind, rows)),
    )


def _envelope(row: dict, source: str) -> tuple:
    return row.pop("source"), row.pop("ingest_ts"), row.pop("version"), source


def test_trades_round_trip(tmp_path):
    trades = events.trades(1000, 50, DAY_START_US)
    capture = _capture(tmp_path, [])
    capture.append_events("trades", trades)
    capture.close()
    rows = read_segments(tmp_path, "trades", *DAY).to_pylist()
    assert [
        (
            r["symbol"],
            r["trade_id"],
            r["price_e8"],
            r["qty_e8"],
            r["is_buyer_maker"],
            _us(r["transact_time"]),
            _us(r["event_time"]),
            r["is_best_match"],
        )
        for r in rows
    ] == [tuple(t) for t in trades]
    assert {(r["source"], _us(r["ingest_ts"]), r["version"]) for r in rows} == {
        ("sbe", INGEST_S * US_PER_S, 1)
    }


def test_best_bid_ask_round_trips(tmp_path):
    quotes = events.quotes(77, 40, DAY_START_US)
    capture = _capture(tmp_path, [])
    capture.append_events("best_bid_ask", quotes)
    capture.close()
    rows = read_segments(tmp_path, "best_bid_ask", *DAY).to_pylist()
    assert [
        (
            r["symbol"],
            _us(r["event_time"]),
            r["book_update_id"],
            r["bid_price_e8"],
            r["bid_qty_e8"],
            r["ask_price_e8"],
            r["ask_qty_e8"],
        )
        for r in rows
    ] == [tuple(q) for q in quotes]


def test_depth_diffs_and_snapshots_round_trip(tmp_path):
    depth = events.depth(5_000, 30, DAY_START_US)
    capture = _capture(tmp_path, [])
    capture.append_events("depth", depth)
    capture.close()
    rows = read_segments(tmp_path, "depth", *DAY).to_pylist()
    assert len(rows) == len(depth)
    for row, event in zip(rows, depth, strict=True):
        snapshot = isinstance(event, DepthSnapshot)
        assert row["snapshot"] is snapshot
        assert row["first_update_id"] == (None if snapshot else event.first_update_id)
        assert row["last_update_id"] == event.last_update_id
        assert _us(row["event_time"]) == event.event_time_us
        assert [(lv["price_e8"], lv["qty_e8"]) for lv in row["bids"]] == list(event.bids)
        assert [(lv["price_e8"], lv["qty_e8"]) for lv in row["asks"]] == list(event.asks)


def test_predictions_round_trip(tmp_path):
    predictions = events.predictions(12, DAY_START_US // US_PER_S)
    capture = _capture(tmp_path, [])
    for prediction in predictions:
        capture.append_prediction(prediction)
    capture.close()
    rows = read_segments(tmp_path, "predictions", *DAY).to_pylist()
    assert [
        (
            r["symbol"],
            r["ts_sec"],
            r["yhat_log_return_10s"],
            r["latency_ms"],
            r["model_version"],
            r["fallback_level"],
            r["feature_age_ms"],
            r["reason"],
            _us(r["tick_time"]),
        )
        for r in rows
    ] == [tuple(p) for p in predictions]
    assert {r["source"] for r in rows} == {"live"}


def test_each_kind_reports_its_closed_segments(tmp_path):
    closed: list = []
    capture = _capture(tmp_path, closed)
    capture.append_events("trades", events.trades(1, 3, DAY_START_US))
    capture.append_events("depth", events.depth(1, 4, DAY_START_US))
    capture.append_events("best_bid_ask", [])
    capture.append_prediction(events.predictions(1, DAY_START_US // US_PER_S)[0])
    capture.flush()
    assert closed == []
    capture.close()
    assert sorted(closed) == [("depth", 4), ("predictions", 1), ("trades", 3)]
    assert capture.recovery["trades"].corrupt == ()


def test_the_settings_place_segments_under_the_data_directory(tmp_path):
    settings = RealtimeSettings(data_dir=tmp_path, segment_max_s=60, segment_max_bytes=1000)
    capture = CaptureWriters.from_settings(settings, clock=VirtualClock(INGEST_S))
    writer = capture.writers["trades"]
    assert (writer.directory, writer.max_age_s, writer.max_bytes) == (
        tmp_path / "capture",
        60,
        1000,
    )


def test_an_unknown_kind_is_refused(tmp_path):
    with pytest.raises(ValueError, match="not a market capture kind"):
        _capture(tmp_path, []).append_events("predictions", events.trades(1, 1, DAY_START_US))
