"""The training set read from ``gold.training_1s`` rows, and its purged time splits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from realtime.features.contract import CONTRACT_V1

LABEL_HORIZON_S = 10
"""Seconds between a row's features and the price its label reads (``y_log_return_10s``)."""


@dataclass(frozen=True)
class TrainingSet:
    """Rows in time order: ``ts_sec`` int64 [N] (unique, increasing), ``features`` float64
    [N, K] of ``CONTRACT_V1.model_inputs`` in contract order, ``labels`` float64 [N]; all finite.
    """

    ts_sec: np.ndarray
    features: np.ndarray
    labels: np.ndarray
    dropped_rows: int = 0
    """Rows of the source dropped because an input or the label was null, NaN or infinite."""

    def __post_init__(self) -> None:
        n = len(self.ts_sec)
        if self.features.ndim != 2 or self.features.shape[0] != n or self.labels.shape != (n,):
            raise ValueError(
                f"inconsistent shapes: ts_sec {self.ts_sec.shape}, features "
                f"{self.features.shape}, labels {self.labels.shape}"
            )

    def __len__(self) -> int:
        return len(self.ts_sec)

    @property
    def time_range(self) -> tuple[int, int]:
        """First and last ``ts_sec`` of the rows, both inclusive (epoch seconds)."""
        if not len(self):
            raise ValueError("an empty training set has no time range")
        return int(self.ts_sec[0]), int(self.ts_sec[-1])

    def rows(self, start: int, stop: int) -> TrainingSet:
        """Rows ``[start, stop)`` by position, as a new set (copies, so views never alias)."""
        return TrainingSet(
            self.ts_sec[start:stop].copy(),
            self.features[start:stop].copy(),
            self.labels[start:stop].copy(),
        )


@dataclass(frozen=True)
class Splits:
    """Contiguous time blocks in order, train < validation < test, separated by purge gaps."""

    train: TrainingSet
    validation: TrainingSet
    test: TrainingSet
    gap_s: int
    purged_rows: int
    """Rows dropped at the end of train and validation because their label reached into the
    next block."""


def training_set_from_table(table: pa.Table) -> TrainingSet:
    """The rows of a ``gold.training_1s`` table (any row order, extra columns ignored) sorted
    by ``ts_sec``; rows with a non-finite input or label are dropped and counted.

    Raises ``ValueError`` for a missing column, a ``contract_version`` other than 1, or a
    repeated ``ts_sec`` (one symbol per training set).
    """
    needed = ["ts_sec", *CONTRACT_V1.model_inputs, CONTRACT_V1.label]
    missing = [name for name in needed if name not in table.column_names]
    if missing:
        raise ValueError(f"training table lacks columns {missing}")
    if "contract_version" in table.column_names and table.num_rows:
        versions = pc.unique(table["contract_version"]).to_pylist()
        if versions != [CONTRACT_V1.version]:
            raise ValueError(f"training rows of contract versions {versions}, expected [1]")

    ts_sec = table["ts_sec"].to_numpy(zero_copy_only=False).astype(np.int64)
    order = np.argsort(ts_sec, kind="stable")
    ts_sec = ts_sec[order]
    if np.any(np.diff(ts_sec) == 0):
        raise ValueError("repeated ts_sec: a training set holds one row per second of one symbol")
    features = np.column_stack(
        [_float_column(table, name)[order] for name in CONTRACT_V1.model_inputs]
    )
    labels = _float_column(table, CONTRACT_V1.label)[order]

    finite = np.isfinite(features).all(axis=1) & np.isfinite(labels)
    return TrainingSet(
        ts_sec[finite],
        np.ascontiguousarray(features[finite]),
        labels[finite],
        dropped_rows=int(len(finite) - np.count_nonzero(finite)),
    )


def split_by_time(
    training_set: TrainingSet,
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    gap_s: int = LABEL_HORIZON_S,
) -> Splits:
    """Train, validation and test as contiguous blocks holding ``fractions`` of the rows.

    Purge: the rows at the end of train (and of validation) whose ``ts_sec + gap_s`` reaches
    the first second of the next block are dropped, so no label of one block overlaps the
    next block's seconds. With ``gap_s`` = the label horizon, every kept row satisfies
    ``ts_sec + gap_s < next_block.ts_sec[0]``.
    """
    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1.0) > 1e-9:
        raise ValueError(f"fractions must be three positive shares summing to 1, got {fractions}")
    if gap_s < 0:
        raise ValueError(f"gap_s must be >= 0, got {gap_s}")
    n = len(training_set)
    train_end = int(n * fractions[0])
    validation_end = train_end + int(n * fractions[1])
    ts = training_set.ts_sec

    def purged_end(start: int, end: int) -> int:
        """The end of ``[start, end)`` without rows whose label reaches ``ts[end]``."""
        if end >= n:
            return end
        return max(start, int(np.searchsorted(ts[start:end], ts[end] - gap_s, "left")) + start)

    train_kept = purged_end(0, train_end)
    validation_kept = purged_end(train_end, validation_end)
    splits = Splits(
        train=training_set.rows(0, train_kept),
        validation=training_set.rows(train_end, validation_kept),
        test=training_set.rows(validation_end, n),
        gap_s=gap_s,
        purged_rows=(train_end - train_kept) + (validation_end - validation_kept),
    )
    for name in ("train", "validation", "test"):
        if not len(getattr(splits, name)):
            raise ValueError(f"{n} rows leave the {name} split empty after the purge gap")
    return splits


def _float_column(table: pa.Table, name: str) -> np.ndarray:
    """A column as float64 with nulls as NaN."""
    column = pc.cast(table[name], pa.float64())
    return column.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
