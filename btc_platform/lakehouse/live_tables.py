"""The lake's tables fed by the live service's capture segments, and their quality.

The bronze live tables and ``gold.predictions`` have the segments' own Arrow schemas
(``realtime.archive.schemas``), so a segment's rows are written as they are: one schema,
one place. ``bronze.live_depth`` has nested columns (book levels as ``list<struct>``);
``tables.ensure_table`` gives nested fields their ids too. Writes go through
``tables.overwrite_window`` as for every other table.
"""

from __future__ import annotations

import pyarrow as pa
from pyiceberg.transforms import DayTransform, HourTransform

from btc_platform.lakehouse.tables import TableSpec
from realtime.archive import schemas as capture
from realtime.market.arrow_schemas import TIMESTAMP_US

FALLBACK_LEVELS = (1, 2, 3, 4, 5)

BRONZE_LIVE_TRADES = TableSpec(
    "bronze",
    "live_trades",
    capture.TRADES_SCHEMA,
    "event_time",
    HourTransform(),
    "Raw trades of the live SBE stream as captured, one row per trade id.",
)
BRONZE_LIVE_BEST_BID_ASK = TableSpec(
    "bronze",
    "live_best_bid_ask",
    capture.BEST_BID_ASK_SCHEMA,
    "event_time",
    HourTransform(),
    "Best bid/ask events of the live SBE stream as captured.",
)
BRONZE_LIVE_DEPTH = TableSpec(
    "bronze",
    "live_depth",
    capture.DEPTH_SCHEMA,
    "event_time",
    HourTransform(),
    "Depth diffs and depth20 snapshots of the live SBE stream as captured (levels best first).",
)
GOLD_PREDICTIONS = TableSpec(
    "gold",
    "predictions",
    capture.PREDICTIONS_SCHEMA,
    "tick_time",
    DayTransform(),
    "Every live prediction, by the tick that made it (its ts_sec may be the previous day's).",
)
GOLD_PREDICTION_QUALITY = TableSpec(
    "gold",
    "prediction_quality",
    pa.schema(
        [
            pa.field("symbol", pa.string(), nullable=False),
            pa.field("window_start", TIMESTAMP_US, nullable=False),
            pa.field("window_end", TIMESTAMP_US, nullable=False),
            pa.field("n_predictions", pa.int64(), nullable=False),
            pa.field("n_labelled", pa.int64(), nullable=False),
            pa.field("n_scored", pa.int64(), nullable=False),
            pa.field("mae", pa.float64()),
            pa.field("hit_rate", pa.float64()),
            pa.field("n_directional", pa.int64(), nullable=False),
            pa.field("hits", pa.int64(), nullable=False),
            *(
                pa.field(f"share_level_{level}", pa.float64(), nullable=False)
                for level in FALLBACK_LEVELS
            ),
            *capture.ENVELOPE,
        ]
    ),
    "window_start",
    DayTransform(),
    "Live predictions against realised labels per 5-minute window of tick time: counts, MAE, "
    "hit rate (nonzero calls on nonzero labels), share of each fallback level.",
)

LIVE_TABLES = (
    BRONZE_LIVE_TRADES,
    BRONZE_LIVE_BEST_BID_ASK,
    BRONZE_LIVE_DEPTH,
    GOLD_PREDICTIONS,
    GOLD_PREDICTION_QUALITY,
)
