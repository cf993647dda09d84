"""The live assets materialised in process against a real SQLite Iceberg catalog.

A synthetic capture (written by the service's own ``CaptureWriters``) covers 09:55 to
12:05 UTC of 2026-01-01 in ten-minute segments, so segments straddle the hour edges. The
bronze hours are exactly the captured hours; a re-run replaces them; a trade-id hole in
the 11:00 hour fails the blocking check, which names it. A day of predictions scored
against a small gold.training_1s equals a hand computation.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

dg = pytest.importorskip("dagster", reason="the batch extra is not installed")

from btc_platform.definitions import build_definitions  # noqa: E402
from btc_platform.defs.constants import (  # noqa: E402
    BRONZE_LIVE_BEST_BID_ASK,
    BRONZE_LIVE_DEPTH,
    BRONZE_LIVE_TRADES,
    GOLD_PREDICTION_QUALITY,
    GOLD_PREDICTIONS,
    LIVE_TRADE_IDS_CONTIGUOUS,
)
from btc_platform.defs.live.resources import CaptureResource  # noqa: E402
from btc_platform.defs.resources import LakehouseResource  # noqa: E402
from btc_platform.lakehouse import live_tables, tables  # noqa: E402
from btc_platform.lakehouse.catalog import open_catalog  # noqa: E402
from btc_platform.settings import LakehouseSettings  # noqa: E402
from btc_platform_tests.realtime.archive import events  # noqa: E402
from btc_platform_tests.realtime.archive.events import DAY_START_US, SYMBOL  # noqa: E402
from btc_platform_tests.support.dagster_backfill import IN_PROCESS  # noqa: E402
from btc_platform_tests.support.lake_tables import market_tables  # noqa: E402
from realtime.archive.capture import CaptureWriters  # noqa: E402
from realtime.clock import VirtualClock  # noqa: E402
from realtime.inference.prediction import Prediction  # noqa: E402

pytestmark = pytest.mark.slow

US = 1_000_000
HOUR_US = 3600 * US
H10 = DAY_START_US + 10 * HOUR_US
H11 = H10 + HOUR_US
CAPTURE_START_S = H10 // US - 300  # 09:55
CAPTURE_SECONDS = 2 * 3600 + 600  # to 12:05
STEP_S = 2
FIRST_TRADE_ID = 5_000_000
HOLE = range(FIRST_TRADE_ID + 1950 + 600, FIRST_TRADE_ID + 1950 + 603)
"""Three trades of 11:20:00 to 11:20:04 that the capture never saw."""
BRONZE = [BRONZE_LIVE_TRADES, BRONZE_LIVE_BEST_BID_ASK, BRONZE_LIVE_DEPTH]
EVERYTHING = (0, 2**62)


@dataclass
class Lake:
    data_dir: Path
    capture: Path
    job: dg.JobDefinition
    instance: dg.DagsterInstance

    def run(self, partition: str, assets: list[dg.AssetKey]) -> dg.ExecuteInProcessResult:
        return self.job.execute_in_process(
            instance=self.instance,
            partition_key=partition,
            asset_selection=assets,
            run_config=IN_PROCESS,
            raise_on_error=False,
        )

    def scan(self, spec: tables.TableSpec, window: tuple[int, int] = EVERYTHING) -> pa.Table:
        catalog = open_catalog(LakehouseSettings(data_dir=self.data_dir))
        try:
            return tables.scan_window(catalog, spec, *window)
        finally:
            catalog.engine.dispose()

    def snapshot_id(self, spec: tables.TableSpec) -> int | None:
        catalog = open_catalog(LakehouseSettings(data_dir=self.data_dir))
        try:
            return tables.current_snapshot_id(catalog, spec)
        finally:
            catalog.engine.dispose()


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    data_dir, capture = tmp_path / "lake", tmp_path / "capture"
    defs = build_definitions(
        resources={
            "lakehouse": LakehouseResource(data_dir=str(data_dir), symbol=SYMBOL),
            "capture": CaptureResource(directory=str(capture)),
        }
    )
    return Lake(
        data_dir,
        capture,
        defs.resolve_implicit_global_asset_job_def(),
        dg.DagsterInstance.ephemeral(),
    )


@dataclass(frozen=True)
class Captured:
    trades: list
    quotes: list
    depth: list


def write_market_capture(directory: Path) -> Captured:
    """One trade, one best bid/ask and five depth events every 2 s, as the service would
    capture them (segments of ten minutes, closed by age)."""
    clock = VirtualClock(CAPTURE_START_S)
    writers = CaptureWriters(directory, max_age_s=600, max_bytes=1 << 30, clock=clock)
    captured = Captured([], [], [])
    for k in range(CAPTURE_SECONDS // STEP_S):
        time_us = (CAPTURE_START_S + k * STEP_S) * US
        trade_id = FIRST_TRADE_ID + k
        trades = [] if trade_id in HOLE else events.trades(trade_id, 1, time_us)
        quotes = events.quotes(10 * k, 1, time_us)
        depth = events.depth(100 * k, 5, time_us, step_us=300_000)
        writers.append_events("trades", trades)
        writers.append_events("best_bid_ask", quotes)
        writers.append_events("depth", depth)
        captured.trades.extend(trades)
        captured.quotes.extend(quotes)
        captured.depth.extend(depth)
        clock.advance(STEP_S)
        writers.flush()
    writers.close()
    return captured


def _in_hour(items: list, start_us: int) -> list:
    return [e for e in items if start_us <= e.event_time_us < start_us + HOUR_US]


def _materialisation(result: dg.ExecuteInProcessResult, key: dg.AssetKey) -> dict:
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key == key]
    return {name: value.value for name, value in event.materialization.metadata.items()}


def _check(result: dg.ExecuteInProcessResult):
    (evaluation,) = [
        e for e in result.get_asset_check_evaluations() if e.check_name == LIVE_TRADE_IDS_CONTIGUOUS
    ]
    return evaluation


def test_an_hour_of_capture_lands_in_bronze_exactly_and_a_rerun_replaces_it(lake: Lake):
    captured = write_market_capture(lake.capture)
    result = lake.run("2026-01-01-10:00", BRONZE)
    assert result.success

    trades = _in_hour(captured.trades, H10)
    assert [t.trade_id for t in trades] == list(range(FIRST_TRADE_ID + 150, FIRST_TRADE_ID + 1950))
    stored = lake.scan(live_tables.BRONZE_LIVE_TRADES).sort_by("trade_id")
    assert stored["trade_id"].to_pylist() == [t.trade_id for t in trades]
    assert stored["price_e8"].to_pylist() == [t.price_e8 for t in trades]
    quotes = lake.scan(live_tables.BRONZE_LIVE_BEST_BID_ASK).sort_by("book_update_id")
    assert quotes["book_update_id"].to_pylist() == [
        q.book_update_id for q in _in_hour(captured.quotes, H10)
    ]
    depth = lake.scan(live_tables.BRONZE_LIVE_DEPTH).sort_by(
        [("event_time", "ascending"), ("last_update_id", "ascending")]
    )
    expected_depth = _in_hour(captured.depth, H10)
    assert depth.num_rows == len(expected_depth)
    assert pc.sum(depth["snapshot"]).as_py() == len(expected_depth) // 5
    first = depth.to_pylist()[0]
    assert [(lv["price_e8"], lv["qty_e8"]) for lv in first["asks"]] == list(expected_depth[0].asks)

    metadata = _materialisation(result, BRONZE_LIVE_TRADES)
    assert metadata["rows"] == 1800
    assert (metadata["id_column"], metadata["first_id"], metadata["last_id"]) == (
        "trade_id",
        FIRST_TRADE_ID + 150,
        FIRST_TRADE_ID + 1949,
    )
    # 09:55-10:05, 10:05-10:15, ..., 10:55-11:05: seven ten-minute segments hold the hour.
    assert metadata["segments_read"] == 7
    assert int(metadata["iceberg_snapshot_id"]) == lake.snapshot_id(live_tables.BRONZE_LIVE_TRADES)
    check = _check(result)
    assert check.passed
    assert check.description == (
        f"1800 trades, ids {FIRST_TRADE_ID + 150}-{FIRST_TRADE_ID + 1949}, contiguous"
    )

    snapshots = {spec: lake.snapshot_id(spec) for spec in _bronze_specs()}
    again = lake.run("2026-01-01-10:00", BRONZE)
    assert again.success
    for spec in _bronze_specs():
        assert (
            lake.scan(spec).num_rows
            == {
                live_tables.BRONZE_LIVE_TRADES: 1800,
                live_tables.BRONZE_LIVE_BEST_BID_ASK: 1800,
                live_tables.BRONZE_LIVE_DEPTH: len(expected_depth),
            }[spec]
        ), spec.qualified_name
        assert lake.snapshot_id(spec) != snapshots[spec], spec.qualified_name


def _bronze_specs() -> list[tables.TableSpec]:
    return [
        live_tables.BRONZE_LIVE_TRADES,
        live_tables.BRONZE_LIVE_BEST_BID_ASK,
        live_tables.BRONZE_LIVE_DEPTH,
    ]


def test_a_hole_in_the_trade_ids_fails_the_blocking_check_and_is_named(lake: Lake):
    write_market_capture(lake.capture)
    assert lake.run("2026-01-01-10:00", [BRONZE_LIVE_TRADES]).success
    result = lake.run("2026-01-01-11:00", [BRONZE_LIVE_TRADES])

    assert not result.success  # the blocking check failed the step
    check = _check(result)
    assert not check.passed
    hole = f"{HOLE[0]}-{HOLE[-1]}"
    assert check.description == f"3 ids missing: {hole}"
    metadata = {name: value.value for name, value in check.metadata.items()}
    assert metadata["missing_ranges"] == [hole]
    assert metadata["edge_before"] == "joined"  # 10:00's last id is 11:00's first - 1
    assert metadata["hours_with_holes"] == ["2026-01-01-11:00"]
    # The rows that were captured are written all the same.
    hour = lake.scan(live_tables.BRONZE_LIVE_TRADES, (H11, H11 + HOUR_US))
    assert hour.num_rows == 1800 - 3


# -- gold.predictions and gold.prediction_quality ---------------------------------------------

DAY_START_S = DAY_START_US // US


def _predictions(label_seconds: list[int]) -> tuple[list[Prediction], list[Prediction]]:
    """The day's predictions (varied on purpose) and one made the next day."""
    day = []
    for i, ts_sec in enumerate(label_seconds[::20][:40]):
        safe = i % 6 == 5
        yhat = None if safe else (0.0 if i % 5 == 0 else (-1) ** i * 1e-4 * (i + 1))
        day.append(
            Prediction(
                SYMBOL,
                ts_sec,
                yhat,
                latency_ms=2.0,
                model_version="" if safe else ("m1" if i < 20 else "m2"),
                fallback_level=5 if safe else 1 + i % 3,
                feature_age_ms=1300,
                reason="safe mode" if safe else "fresh",
                tick_time_us=(ts_sec + 1) * US + 300_000,
            )
        )
    # From the previous day's last second, at 00:00:00.4: in this day, without a label.
    day.append(
        Prediction(
            SYMBOL, DAY_START_S - 1, 1e-4, 2.0, "m1", 2, 1400, "stale", DAY_START_US + 400_000
        )
    )
    # From a second without a training row (a day's last seconds have no label).
    day.append(
        Prediction(
            SYMBOL,
            label_seconds[-1] + 5,
            2e-4,
            2.0,
            "m2",
            1,
            900,
            "fresh",
            (label_seconds[-1] + 6) * US,
        )
    )
    tomorrow_s = DAY_START_S + 86_400
    next_day = Prediction(
        SYMBOL, tomorrow_s, 3e-4, 2.0, "m2", 1, 900, "fresh", tomorrow_s * US + 500_000
    )
    return day, [next_day]


def _hand_quality(predictions: list[Prediction], labels: dict[int, float]) -> dict:
    """Per 5-minute window of tick time and for the day, computed the plain way."""
    groups: dict[object, list[Prediction]] = defaultdict(list)
    for p in predictions:
        groups[p.tick_time_us // (300 * US) * 300 * US].append(p)
        groups["day"].append(p)
    expected = {}
    for key, members in groups.items():
        labelled = [p for p in members if p.ts_sec in labels]
        scored = [p for p in labelled if p.yhat_log_return_10s is not None]
        errors = [abs(p.yhat_log_return_10s - labels[p.ts_sec]) for p in scored]
        calls = [p for p in scored if p.yhat_log_return_10s != 0 and labels[p.ts_sec] != 0]
        hits = sum((p.yhat_log_return_10s > 0) == (labels[p.ts_sec] > 0) for p in calls)
        expected[key] = {
            "n_predictions": len(members),
            "n_labelled": len(labelled),
            "n_scored": len(scored),
            "mae": sum(errors) / len(errors) if errors else None,
            "n_directional": len(calls),
            "hits": hits,
            "hit_rate": hits / len(calls) if calls else None,
            **{
                f"share_level_{level}": sum(p.fallback_level == level for p in members)
                / len(members)
                for level in range(1, 6)
            },
        }
    return expected


def test_a_day_of_predictions_is_scored_against_the_realised_labels(lake: Lake):
    training = market_tables(900).training_1s
    catalog = open_catalog(LakehouseSettings(data_dir=lake.data_dir))
    tables.overwrite_window(
        catalog,
        tables.GOLD_TRAINING_1S,
        training,
        DAY_START_US,
        DAY_START_US + 86_400 * US,
        symbol=SYMBOL,
    )
    catalog.engine.dispose()
    labels = dict(
        zip(training["ts_sec"].to_pylist(), training["y_log_return_10s"].to_pylist(), strict=True)
    )
    assert 0.0 in labels.values()  # zero labels are in play: they are no directional call
    day, next_day = _predictions(sorted(labels))
    writers = CaptureWriters(
        lake.capture, max_age_s=300, max_bytes=1 << 30, clock=VirtualClock(DAY_START_S)
    )
    for prediction in [*day, *next_day]:
        writers.append_prediction(prediction)
    writers.close()

    result = lake.run("2026-01-01", [GOLD_PREDICTIONS, GOLD_PREDICTION_QUALITY])
    assert result.success

    stored = lake.scan(live_tables.GOLD_PREDICTIONS)
    assert sorted(stored["ts_sec"].to_pylist()) == sorted(p.ts_sec for p in day)
    predictions_meta = _materialisation(result, GOLD_PREDICTIONS)
    assert predictions_meta["rows"] == len(day) == 42
    assert predictions_meta["model_versions"] == ["", "m1", "m2"]

    expected = _hand_quality(day, labels)
    windows = lake.scan(live_tables.GOLD_PREDICTION_QUALITY).sort_by("window_start").to_pylist()
    assert [int(w["window_start"].timestamp()) * US for w in windows] == sorted(
        key for key in expected if key != "day"
    )
    for window in windows:
        want = expected[int(window["window_start"].timestamp()) * US]
        for column, value in want.items():
            if isinstance(value, float):
                assert window[column] == pytest.approx(value, rel=1e-12), column
            else:
                assert window[column] == value, column
        assert window["source"] == "gold.predictions"

    metadata = _materialisation(result, GOLD_PREDICTION_QUALITY)
    day_expected = expected["day"]
    assert metadata["n_predictions"] == 42
    assert metadata["n_labelled"] == day_expected["n_labelled"] == 40
    assert metadata["n_scored"] == day_expected["n_scored"]
    assert metadata["mae"] == pytest.approx(day_expected["mae"], rel=1e-12)
    assert metadata["hit_rate"] == pytest.approx(day_expected["hit_rate"], rel=1e-12)
    assert "| 00:00–00:05 |" in metadata["windows"]
    by_level = metadata["by_fallback_level"].splitlines()
    assert by_level[0].startswith("| fallback level | n | share |")
    assert [line.split(" | ")[0] for line in by_level[2:]] == [f"| {n}" for n in (1, 2, 3, 5)]
    assert "| (no model) |" in metadata["by_model_version"]
    assert dt.datetime.fromtimestamp(DAY_START_S, tz=dt.UTC).date() == dt.date(2026, 1, 1)
