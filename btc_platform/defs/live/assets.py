"""The live capture into the lake.

``bronze.live_trades``, ``bronze.live_best_bid_ask`` and ``bronze.live_depth``: one hour per
partition, read from the closed capture segments and written hour by hour, each write
replacing exactly its hour. ``gold.predictions``: one day of the predictions capture.
``gold.prediction_quality``: the day's predictions against ``gold.training_1s``'s realised
labels, per 5-minute window, with the day's totals shown as Markdown in the Dagster UI.

Segments still open (``.partial``) are not read, so an hour materialised before its last
segment closed misses those rows until it is run again; the schedule waits past the
capture's rotation time (``segment_max_s``) for that reason.
"""

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog import Catalog

from btc_platform.defs.bronze.assets import MAX_HOURS_PER_RUN
from btc_platform.defs.constants import (
    BRONZE_LIVE_BEST_BID_ASK,
    BRONZE_LIVE_DEPTH,
    BRONZE_LIVE_TRADES,
    GOLD_PREDICTION_QUALITY,
    GOLD_PREDICTIONS,
    GOLD_TRAINING_1S,
    OWNERS,
)
from btc_platform.defs.layers import DAYS_PER_RUN, Day, days_of, now_us
from btc_platform.defs.live import quality
from btc_platform.defs.live.checks import CONTIGUITY_SPEC, check_contiguity
from btc_platform.defs.live.resources import CaptureResource
from btc_platform.defs.partitions import window_us
from btc_platform.defs.resources import LakehouseResource
from btc_platform.lakehouse import live_tables, tables
from btc_platform.lakehouse.completeness import US_PER_HOUR
from btc_platform.lakehouse.tables import TableSpec, overwrite_window, scan_window
from realtime.archive import schemas as capture_kinds
from realtime.archive.reader import find_segments, read_rows
from realtime.features.contract import CONTRACT_V1


@dataclass(frozen=True)
class LiveBronze:
    """One bronze table fed by one capture kind."""

    key: dg.AssetKey
    table: TableSpec
    kind: str
    id_column: str
    """Reported as the first and last id of a run."""
    unique_ids: bool
    """Ids name one event each, so a row seen twice (the archive re-read a bus entry after a
    restart from an older cursor) is dropped, keeping the first capture."""
    description: str


LIVE_BRONZE = (
    LiveBronze(
        BRONZE_LIVE_TRADES,
        live_tables.BRONZE_LIVE_TRADES,
        capture_kinds.TRADES,
        "trade_id",
        True,
        "Raw trades of the live SBE stream for one hour, from the closed capture segments, "
        "one row per trade id; proven contiguous by id.",
    ),
    LiveBronze(
        BRONZE_LIVE_BEST_BID_ASK,
        live_tables.BRONZE_LIVE_BEST_BID_ASK,
        capture_kinds.BEST_BID_ASK,
        "book_update_id",
        False,
        "Best bid/ask events of the live SBE stream for one hour, from the closed capture "
        "segments (update ids may jump: Binance culls this stream under load).",
    ),
    LiveBronze(
        BRONZE_LIVE_DEPTH,
        live_tables.BRONZE_LIVE_DEPTH,
        capture_kinds.DEPTH,
        "last_update_id",
        False,
        "Depth diffs and depth20 snapshots of the live SBE stream for one hour, from the "
        "closed capture segments; levels best first as int64 e8 mantissas.",
    ),
)


@dataclass
class Landing:
    """What one run read from the segments and wrote."""

    rows: int = 0
    repeated_rows_dropped: int = 0
    segments: set[str] = field(default_factory=set)
    first_id: int | None = None
    last_id: int | None = None
    snapshot_id: int | None = None

    def add_ids(self, ids: pa.ChunkedArray) -> None:
        if not len(ids):
            return
        low, high = pc.min(ids).as_py(), pc.max(ids).as_py()
        self.first_id = low if self.first_id is None else min(self.first_id, low)
        self.last_id = high if self.last_id is None else max(self.last_id, high)


def build_live_assets(
    hourly: dg.HourlyPartitionsDefinition, daily: dg.DailyPartitionsDefinition
) -> list[dg.AssetsDefinition]:
    return [
        *(_bronze_asset(hourly, live) for live in LIVE_BRONZE),
        _predictions_asset(daily),
        _quality_asset(daily),
    ]


def _bronze_asset(
    partitions: dg.HourlyPartitionsDefinition, live: LiveBronze
) -> dg.AssetsDefinition:
    is_trades = live.key == BRONZE_LIVE_TRADES

    @dg.asset(
        key=live.key,
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=MAX_HOURS_PER_RUN),
        group_name="bronze",
        owners=OWNERS,
        kinds={"iceberg", "parquet", "python"},
        description=live.description,
        metadata={"table": live.table.qualified_name, "capture_kind": live.kind},
        check_specs=[CONTIGUITY_SPEC] if is_trades else None,
    )
    def live_bronze(
        context: dg.AssetExecutionContext, lakehouse: LakehouseResource, capture: CaptureResource
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        start_us, end_us = window_us(context.partition_time_window)
        catalog, symbol = lakehouse.catalog(), lakehouse.settings().symbol
        started = time.monotonic()
        landing = land_hours(catalog, live, capture, symbol, start_us, end_us)
        context.log.info(
            "%d %s rows from %d segments into %s",
            landing.rows,
            live.kind,
            len(landing.segments),
            live.table.qualified_name,
        )
        yield dg.MaterializeResult(
            metadata={
                "rows": landing.rows,
                "segments_read": len(landing.segments),
                "segments": dg.MetadataValue.json(sorted(landing.segments)),
                "id_column": live.id_column,
                "first_id": landing.first_id,
                "last_id": landing.last_id,
                "repeated_rows_dropped": landing.repeated_rows_dropped,
                "seconds": round(time.monotonic() - started, 3),
                "window_start_us": start_us,
                "window_end_us": end_us,
                "iceberg_snapshot_id": str(landing.snapshot_id),
            }
        )
        if is_trades:
            yield check_contiguity(catalog, symbol, start_us, end_us)

    return live_bronze


def land_hours(
    catalog: Catalog,
    live: LiveBronze,
    capture: CaptureResource,
    symbol: str,
    start_us: int,
    end_us: int,
) -> Landing:
    """Replace each hour of ``[start_us, end_us)`` with that hour's captured rows."""
    tables.ensure_table(catalog, live.table)
    landing = Landing()
    for hour in range(start_us, end_us, US_PER_HOUR):
        segments = find_segments(capture.path(), live.kind, hour, hour + US_PER_HOUR)
        rows = read_rows(segments, live.kind, hour, hour + US_PER_HOUR)
        rows = rows.filter(pc.equal(rows["symbol"], symbol))
        if live.unique_ids:
            rows, dropped = drop_repeated_ids(rows, live.id_column)
            landing.repeated_rows_dropped += dropped
        write = overwrite_window(catalog, live.table, rows, hour, hour + US_PER_HOUR, symbol=symbol)
        landing.rows += write.rows
        landing.segments.update(segment.path.name for segment in segments)
        landing.add_ids(rows[live.id_column])
        landing.snapshot_id = write.snapshot_id
    return landing


def drop_repeated_ids(rows: pa.Table, column: str) -> tuple[pa.Table, int]:
    """``rows`` without the later occurrences of an id, in their order; and how many went."""
    ids = rows[column].to_numpy()
    _, first = np.unique(ids, return_index=True)
    if len(first) == len(ids):
        return rows, 0
    return rows.take(np.sort(first)), len(ids) - len(first)


def _predictions_asset(partitions: dg.DailyPartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        key=GOLD_PREDICTIONS,
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=DAYS_PER_RUN),
        group_name="gold",
        owners=OWNERS,
        kinds={"iceberg", "parquet", "python"},
        description=(
            "Every prediction the live service made in one UTC day (by tick time), from the "
            "closed predictions capture segments; safe-mode ticks have no forecast."
        ),
        metadata={"table": live_tables.GOLD_PREDICTIONS.qualified_name},
    )
    def predictions(
        context: dg.AssetExecutionContext, lakehouse: LakehouseResource, capture: CaptureResource
    ) -> dg.MaterializeResult:
        catalog, symbol = lakehouse.catalog(), lakehouse.settings().symbol
        spec = live_tables.GOLD_PREDICTIONS
        tables.ensure_table(catalog, spec)
        kind = capture_kinds.PREDICTIONS
        written, segments, snapshot_id = [], set(), None
        for day in days_of(context):
            found = find_segments(capture.path(), kind, day.start_us, day.end_us)
            rows = read_rows(found, kind, day.start_us, day.end_us)
            rows = rows.filter(pc.equal(rows["symbol"], symbol))
            snapshot_id = overwrite_window(
                catalog, spec, rows, day.start_us, day.end_us, symbol=symbol
            ).snapshot_id
            written.append(rows)
            segments.update(segment.path.name for segment in found)
        rows = pa.concat_tables(written)
        levels = Counter(rows["fallback_level"].to_pylist())
        versions = sorted(set(rows["model_version"].to_pylist()))
        ts_sec = rows["ts_sec"]
        return dg.MaterializeResult(
            metadata={
                "rows": rows.num_rows,
                "segments_read": len(segments),
                "first_ts_sec": pc.min(ts_sec).as_py() if rows.num_rows else None,
                "last_ts_sec": pc.max(ts_sec).as_py() if rows.num_rows else None,
                "by_fallback_level": dg.MetadataValue.json(
                    {str(level): levels[level] for level in sorted(levels)}
                ),
                "model_versions": dg.MetadataValue.json(versions),
                "iceberg_snapshot_id": str(snapshot_id),
            }
        )

    return predictions


def _quality_asset(partitions: dg.DailyPartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        key=GOLD_PREDICTION_QUALITY,
        deps=[GOLD_PREDICTIONS, GOLD_TRAINING_1S],
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=DAYS_PER_RUN),
        group_name="gold",
        owners=OWNERS,
        kinds={"iceberg", "python"},
        description=(
            "Live predictions against the realised 10-second label of gold.training_1s, per "
            "5-minute window of tick time: counts, MAE, hit rate, share of fallback levels."
        ),
        metadata={"table": live_tables.GOLD_PREDICTION_QUALITY.qualified_name},
    )
    def prediction_quality(
        context: dg.AssetExecutionContext, lakehouse: LakehouseResource
    ) -> dg.MaterializeResult:
        catalog, symbol = lakehouse.catalog(), lakehouse.settings().symbol
        spec = live_tables.GOLD_PREDICTION_QUALITY
        tables.ensure_table(catalog, spec)
        scored, windows, snapshot_id = [], [], None
        for day in days_of(context):
            day_scored, day_windows = _score_day(catalog, day, symbol)
            write = overwrite_window(
                catalog, spec, day_windows, day.start_us, day.end_us, symbol=symbol
            )
            snapshot_id = write.snapshot_id
            scored.append(day_scored)
            windows.append(day_windows)
        everything = quality.Scored.concat(scored)
        day_quality = quality.quality_of(everything, np.ones(len(everything.yhat), dtype=bool))
        n = day_quality.n
        return dg.MaterializeResult(
            metadata={
                "rows": sum(w.num_rows for w in windows),
                "n_predictions": n,
                "n_labelled": day_quality.n_labelled,
                "n_scored": day_quality.n_scored,
                "mae": day_quality.mae,
                "hit_rate": day_quality.hit_rate,
                "windows": dg.MetadataValue.md(quality.windows_markdown(pa.concat_tables(windows))),
                "by_fallback_level": dg.MetadataValue.md(
                    quality.groups_markdown(
                        "fallback level", quality.quality_by(everything, everything.level), n
                    )
                ),
                "by_model_version": dg.MetadataValue.md(
                    quality.groups_markdown(
                        "model version",
                        quality.quality_by(everything, everything.model_version),
                        n,
                        name=lambda version: version or "(no model)",
                    )
                ),
                "labels_snapshot_id": str(
                    tables.current_snapshot_id(catalog, tables.GOLD_TRAINING_1S)
                ),
                "iceberg_snapshot_id": str(snapshot_id),
            }
        )

    return prediction_quality


def _score_day(catalog: Catalog, day: Day, symbol: str) -> tuple[quality.Scored, pa.Table]:
    """The day's predictions joined with their labels, and its quality windows."""
    predictions = scan_window(
        catalog, live_tables.GOLD_PREDICTIONS, day.start_us, day.end_us, symbol=symbol
    )
    label = CONTRACT_V1.label
    if predictions.num_rows:
        # A tick predicts from a second at most a little before it; labels are read for
        # exactly the seconds predicted from, whichever day holds them.
        first_sec = pc.min(predictions["ts_sec"]).as_py()
        last_sec = pc.max(predictions["ts_sec"]).as_py()
        labels = scan_window(
            catalog,
            tables.GOLD_TRAINING_1S,
            first_sec * quality.US_PER_SECOND,
            (last_sec + 1) * quality.US_PER_SECOND,
            ("ts_sec", label),
            symbol=symbol,
        )
    else:
        labels = pa.table({"ts_sec": pa.array([], pa.int64()), label: pa.array([], pa.float64())})
    scored = quality.join_labels(predictions, labels, label)
    return scored, quality.quality_windows(scored, symbol=symbol, ingest_ts_us=now_us())
