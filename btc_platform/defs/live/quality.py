"""Live predictions against realised labels (pure): per-window rows and the day's summary.

A prediction is scored when it made a forecast (not safe mode) and its second ``ts_sec``
has a realised label in ``gold.training_1s``. MAE and hit rate are
``btc_platform.ml.metrics``'s, so a zero forecast or a zero label is no directional call,
exactly as in training. Windows are of tick time (when the predictions were made), so a
day's windows stay inside its partition even when a tick at 00:00:00 predicted from the
last second of the previous day.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from btc_platform.lakehouse.live_tables import FALLBACK_LEVELS, GOLD_PREDICTION_QUALITY
from btc_platform.ml.metrics import compute_metrics

WINDOW_S = 300
US_PER_SECOND = 1_000_000
QUALITY_SOURCE = "gold.predictions"


@dataclass(frozen=True)
class Scored:
    """Predictions joined with their labels, as numpy columns of equal length."""

    tick_us: np.ndarray
    yhat: np.ndarray
    """NaN in safe mode (no forecast)."""
    y: np.ndarray
    """NaN where the second has no realised label."""
    level: np.ndarray
    model_version: np.ndarray

    @staticmethod
    def concat(parts: Sequence[Scored]) -> Scored:
        """Several days' predictions as one."""
        columns = ("tick_us", "yhat", "y", "level", "model_version")
        return Scored(*(np.concatenate([getattr(p, c) for p in parts]) for c in columns))

    @property
    def labelled(self) -> np.ndarray:
        return ~np.isnan(self.y)

    @property
    def scored(self) -> np.ndarray:
        return self.labelled & ~np.isnan(self.yhat)


@dataclass(frozen=True)
class Quality:
    """The numbers of one group of predictions."""

    n: int
    n_labelled: int
    n_scored: int
    mae: float | None
    hit_rate: float | None
    n_directional: int
    hits: int


def join_labels(predictions: pa.Table, labels: pa.Table, label_column: str) -> Scored:
    """Each prediction with the label of its ``ts_sec`` (``labels``: ``ts_sec`` and
    ``label_column``, one row per second)."""
    label_ts = labels["ts_sec"].to_numpy()
    label_y = labels[label_column].to_numpy(zero_copy_only=False).astype(np.float64)
    order = np.argsort(label_ts, kind="stable")
    label_ts, label_y = label_ts[order], label_y[order]
    ts = predictions["ts_sec"].to_numpy()
    if len(label_ts):
        at = np.minimum(np.searchsorted(label_ts, ts), len(label_ts) - 1)
        y = np.where(label_ts[at] == ts, label_y[at], np.nan)
    else:
        y = np.full(len(ts), np.nan)
    yhat = predictions["yhat_log_return_10s"].to_numpy(zero_copy_only=False).astype(np.float64)
    return Scored(
        tick_us=pc.cast(predictions["tick_time"], pa.int64()).to_numpy(),
        yhat=yhat,
        y=y,
        level=predictions["fallback_level"].to_numpy(),
        model_version=np.asarray(predictions["model_version"].to_pylist(), dtype=object),
    )


def quality_of(scored: Scored, members: np.ndarray) -> Quality:
    """The numbers of the predictions selected by the boolean mask ``members``."""
    labelled = scored.labelled & members
    rows = scored.scored & members
    n_scored = int(rows.sum())
    if n_scored:
        metrics = compute_metrics(scored.yhat[rows], scored.y[rows])
        mae, hit_rate = metrics.mae, metrics.hit_rate
        n_directional, hits = metrics.n_directional, metrics.hits
    else:
        mae, hit_rate, n_directional, hits = None, None, 0, 0
    return Quality(
        int(members.sum()), int(labelled.sum()), n_scored, mae, hit_rate, n_directional, hits
    )


def quality_windows(scored: Scored, *, symbol: str, ingest_ts_us: int) -> pa.Table:
    """One row per 5-minute window of tick time that has predictions (the quality table)."""
    window_us = WINDOW_S * US_PER_SECOND
    starts = scored.tick_us // window_us * window_us
    rows = []
    for start in np.unique(starts):
        members = starts == start
        quality = quality_of(scored, members)
        shares = {
            f"share_level_{level}": float(np.sum(scored.level[members] == level)) / quality.n
            for level in FALLBACK_LEVELS
        }
        rows.append(
            {
                "symbol": symbol,
                "window_start": int(start),
                "window_end": int(start) + window_us,
                "n_predictions": quality.n,
                "n_labelled": quality.n_labelled,
                "n_scored": quality.n_scored,
                "mae": quality.mae,
                "hit_rate": quality.hit_rate,
                "n_directional": quality.n_directional,
                "hits": quality.hits,
                **shares,
                "source": QUALITY_SOURCE,
                "ingest_ts": ingest_ts_us,
                "version": 1,
            }
        )
    schema = GOLD_PREDICTION_QUALITY.schema
    if not rows:
        return schema.empty_table()
    return pa.Table.from_pylist(rows, schema=schema)


def quality_by(scored: Scored, keys: np.ndarray) -> dict[object, Quality]:
    """The numbers per distinct value of ``keys`` (one per prediction), in sorted order."""
    return {key: quality_of(scored, keys == key) for key in sorted(set(keys.tolist()))}


# -- Markdown for the Dagster UI ------------------------------------------------------------


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def windows_markdown(windows: pa.Table) -> str:
    header = ["window (UTC)", "n", "labelled", "scored", "MAE", "hit rate"]
    header += [f"L{level}" for level in FALLBACK_LEVELS]
    rows = [
        [
            row["window_start"].strftime("%H:%M") + "–" + row["window_end"].strftime("%H:%M"),
            row["n_predictions"],
            row["n_labelled"],
            row["n_scored"],
            row["mae"],
            row["hit_rate"],
            *(_percent(row[f"share_level_{level}"]) for level in FALLBACK_LEVELS),
        ]
        for row in windows.to_pylist()
    ]
    return markdown_table(header, rows)


def groups_markdown(
    title: str, groups: dict[object, Quality], total: int, name: Callable[[object], str] = str
) -> str:
    header = [title, "n", "share", "labelled", "scored", "MAE", "hit rate"]
    rows = [
        [
            name(key),
            q.n,
            _percent(q.n / total if total else 0.0),
            q.n_labelled,
            q.n_scored,
            q.mae,
            q.hit_rate,
        ]
        for key, q in groups.items()
    ]
    return markdown_table(header, rows)


def _cell(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _percent(share: float) -> str:
    return f"{100 * share:.1f} %"
