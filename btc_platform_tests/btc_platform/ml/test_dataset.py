"""The training set from gold rows, and purged time splits."""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from btc_platform.ml.dataset import (
    LABEL_HORIZON_S,
    TrainingSet,
    split_by_time,
    training_set_from_table,
)
from btc_platform_tests.btc_platform.ml.synthetic import gold_rows
from realtime.features.contract import CONTRACT_V1

K = len(CONTRACT_V1.model_inputs)


def test_rows_come_back_in_time_order_with_inputs_in_contract_order() -> None:
    table = gold_rows(200, seed=1, planted=True)
    shuffled = table.take(np.random.default_rng(1).permutation(table.num_rows))
    shuffled = shuffled.select(list(reversed(shuffled.column_names)))

    training_set = training_set_from_table(shuffled)

    order = np.argsort(table["ts_sec"].to_numpy())
    assert np.all(np.diff(training_set.ts_sec) > 0)
    assert training_set.features.shape == (200, K)
    for column, name in enumerate(CONTRACT_V1.model_inputs):
        np.testing.assert_array_equal(
            training_set.features[:, column], table[name].to_numpy()[order]
        )
    np.testing.assert_array_equal(training_set.labels, table[CONTRACT_V1.label].to_numpy()[order])
    assert training_set.dropped_rows == 0
    assert "spread" not in CONTRACT_V1.model_inputs  # null in trade-only history: never read


def test_rows_with_an_undefined_input_or_label_are_dropped_and_counted() -> None:
    table = gold_rows(100, seed=2, planted=False)
    ret_5s = table["ret_5s"].to_numpy().copy()
    ret_5s[3] = np.nan
    tvi = table["tvi_5s"].to_pylist()
    tvi[10] = None  # a null, not a NaN
    vol = table["vol_ret_10s"].to_numpy().copy()
    vol[20] = np.inf
    labels = table[CONTRACT_V1.label].to_numpy().copy()
    labels[30] = np.nan
    labels[3] = np.nan  # the same row twice counts once
    table = (
        table.set_column(table.schema.get_field_index("ret_5s"), "ret_5s", pa.array(ret_5s))
        .set_column(table.schema.get_field_index("tvi_5s"), "tvi_5s", pa.array(tvi, pa.float64()))
        .set_column(table.schema.get_field_index("vol_ret_10s"), "vol_ret_10s", pa.array(vol))
        .set_column(
            table.schema.get_field_index(CONTRACT_V1.label), CONTRACT_V1.label, pa.array(labels)
        )
    )

    training_set = training_set_from_table(table)

    assert training_set.dropped_rows == 4
    assert len(training_set) == 96
    assert np.isfinite(training_set.features).all()
    assert np.isfinite(training_set.labels).all()
    dropped = set(table["ts_sec"].to_numpy()[[3, 10, 20, 30]].tolist())
    assert dropped.isdisjoint(training_set.ts_sec.tolist())


def test_an_empty_table_gives_an_empty_set() -> None:
    training_set = training_set_from_table(gold_rows(10, seed=3, planted=False).slice(0, 0))

    assert len(training_set) == 0
    assert training_set.features.shape == (0, K)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.drop_columns(["tvi_5s"]), "lacks columns"),
        (
            lambda t: t.set_column(
                t.schema.get_field_index("contract_version"),
                "contract_version",
                pa.array(np.full(t.num_rows, 2, np.int32)),
            ),
            "contract versions",
        ),
        (lambda t: pa.concat_tables([t, t.slice(0, 1)]), "repeated ts_sec"),
    ],
    ids=["missing-input", "other-contract", "repeated-second"],
)
def test_tables_that_are_not_one_symbols_v1_rows_are_refused(change, message) -> None:
    with pytest.raises(ValueError, match=message):
        training_set_from_table(change(gold_rows(50, seed=4, planted=False)))


def _seconds(ts_sec: np.ndarray) -> TrainingSet:
    n = len(ts_sec)
    return TrainingSet(
        np.asarray(ts_sec, np.int64), np.arange(n * K, dtype=np.float64).reshape(n, K), np.zeros(n)
    )


def test_contiguous_seconds_split_seventy_fifteen_fifteen_minus_the_purge() -> None:
    splits = split_by_time(_seconds(np.arange(1_000, 2_000)))

    assert splits.train.time_range == (1_000, 1_689)
    assert splits.validation.time_range == (1_700, 1_839)
    assert splits.test.time_range == (1_850, 1_999)
    assert splits.purged_rows == 2 * LABEL_HORIZON_S
    assert splits.gap_s == LABEL_HORIZON_S
    # the last train label reads second 1_699, before the validation block's first second
    assert splits.train.ts_sec[-1] + LABEL_HORIZON_S < splits.validation.ts_sec[0]


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(st.integers(1, 40), min_size=60, max_size=400),
    train_share=st.floats(0.3, 0.8),
    validation_share=st.floats(0.05, 0.15),
    gap_s=st.integers(0, 30),
)
def test_no_label_of_a_block_reaches_the_next_block(
    steps: list[int], train_share: float, validation_share: float, gap_s: int
) -> None:
    ts_sec = 1_000 + np.cumsum(steps)
    fractions = (train_share, validation_share, 1 - train_share - validation_share)
    refusal = None
    try:
        splits = split_by_time(_seconds(ts_sec), fractions, gap_s)
    except ValueError as error:
        refusal = str(error)
    if refusal is not None:
        assert "empty" in refusal  # too few rows for this gap: refused, never leaked
        return
    blocks = [splits.train, splits.validation, splits.test]

    for earlier, later in itertools.pairwise(blocks):
        assert earlier.ts_sec[-1] + gap_s < later.ts_sec[0]
    kept = np.concatenate([block.ts_sec for block in blocks])
    assert np.all(np.diff(kept) > 0)
    assert len(kept) + splits.purged_rows == len(ts_sec)
    # only rows whose label reaches the next block were purged
    purged = np.setdiff1d(ts_sec, kept)
    next_starts = [splits.validation.ts_sec[0], splits.test.ts_sec[0]]
    assert all(any(0 <= start - t <= gap_s for start in next_starts) for t in purged)
    for block in blocks:
        assert block.time_range == (block.ts_sec[0], block.ts_sec[-1])
        source_rows = (block.features[:, 0] // K).astype(int)  # features move with their second
        np.testing.assert_array_equal(ts_sec[source_rows], block.ts_sec)


@pytest.mark.parametrize(
    ("fractions", "gap_s"),
    [((0.5, 0.5, 0.0), 10), ((0.7, 0.2, 0.2), 10), ((0.7, 0.15, 0.15), -1)],
)
def test_bad_split_parameters_are_refused(fractions, gap_s) -> None:
    with pytest.raises(ValueError, match=r"fractions|gap_s"):
        split_by_time(_seconds(np.arange(100)), fractions, gap_s)


def test_too_few_rows_for_the_gap_are_refused() -> None:
    with pytest.raises(ValueError, match="validation split empty"):
        split_by_time(_seconds(np.arange(30)), gap_s=10)
