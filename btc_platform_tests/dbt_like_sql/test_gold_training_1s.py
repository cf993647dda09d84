"""gold.training_1s: the label of labels_v1 bit for bit, only training rows, no leakage."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from btc_platform_tests.dbt_like_sql.agg_trades import (
    INGEST_US,
    START_SEC,
    START_US,
    SYMBOL,
    TIMESTAMP_US,
    agg_trade,
    bronze_agg_trades,
)
from dbt_like_sql import SqlProject
from realtime.features.bars import Bars, bars_from_tables
from realtime.features.contract import CONTRACT_V1
from realtime.features.engine import batch_features, carried_last_price
from realtime.features.labels import labels_v1, training_mask

S = 1_000_000
SECONDS = 150
GAP = range(100, 107)
"""Silent seconds: the 5-second windows after them have no trade, so inputs are undefined."""
FEATURES = list(CONTRACT_V1.names)
TRAINING_1S = pa.schema(
    [
        ("symbol", pa.string()),
        ("ts", TIMESTAMP_US),
        ("ts_sec", pa.int64()),
        ("contract_version", pa.int32()),
        *((name, pa.float64()) for name in FEATURES),
        ("y_log_return_10s", pa.float64()),
        ("source", pa.string()),
        ("ingest_ts", TIMESTAMP_US),
        ("version", pa.int32()),
    ]
)
"""The contract of ``gold.training_1s``."""


@cache
def bars() -> Bars:
    """150 seconds of a random walk: 0-3 trades a second, a few quiet ones, one long gap."""
    rng = np.random.default_rng(20260101)
    trades, price = [], 98_000 * 10**8
    for second in range(SECONDS):
        if second in GAP:
            continue
        for offset in sorted(rng.integers(0, S, size=rng.integers(0, 4))):
            price += int(rng.integers(-5, 6)) * 10**6
            trades.append(
                agg_trade(
                    len(trades) + 1,
                    START_US + second * S + int(offset),
                    price,
                    int(rng.integers(1, 10**9)),
                    fills=int(rng.integers(1, 4)),
                    is_buyer_maker=bool(rng.integers(0, 2)),
                )
            )
    return bars_from_tables(
        bronze_agg_trades(trades), start_sec=START_SEC, end_sec=START_SEC + SECONDS - 1
    )


def features_1s(log_price: np.ndarray | None = None, missing: str = "nan") -> pa.Table:
    """``silver.features_1s`` of ``bars()``; undefined values as NaN or as NULL."""
    features = batch_features(bars())
    if log_price is None:
        log_price = carried_last_price(bars())[3]
    n = len(bars())

    def floats(values: np.ndarray) -> pa.Array:
        return pa.array(values, mask=np.isnan(values) if missing == "null" else None)

    return pa.table(
        {
            "symbol": [SYMBOL] * n,
            "ts": pa.array(bars().ts_sec * S, TIMESTAMP_US),
            "ts_sec": bars().ts_sec,
            "contract_version": pa.array([1] * n, pa.int32()),
            **{name: floats(features[:, i]) for i, name in enumerate(FEATURES)},
            "log_price": floats(log_price),
            "source": ["silver.bars_1s"] * n,
            "ingest_ts": pa.array([INGEST_US] * n, TIMESTAMP_US),
            "version": pa.array([1] * n, pa.int32()),
        }
    )


def training(
    project: SqlProject,
    con: duckdb.DuckDBPyConnection,
    features: pa.Table,
    start_sec: int,
    end_sec: int,
    last_complete_sec: int,
) -> pa.Table:
    results = project.run(
        con,
        ["gold.training_1s"],
        {"silver.features_1s": features},
        {
            "window_start_sec": start_sec,
            "window_end_sec": end_sec,
            "last_complete_sec": last_complete_sec,
            "ingest_ts_us": INGEST_US + S,
        },
    )
    return results["gold.training_1s"]


def expected_rows(start_sec: int, end_sec: int, last_complete_sec: int):
    """The seconds with a training row, their labels and features, by the Python path."""
    features = batch_features(bars())
    labels = labels_v1(bars(), last_complete_sec=last_complete_sec)
    ts_sec = bars().ts_sec
    mask = training_mask(features, labels, CONTRACT_V1.model_input_indices)
    mask &= (ts_sec >= start_sec) & (ts_sec < end_sec)
    return ts_sec[mask], labels[mask], features[mask]


def test_the_sql_lists_exactly_the_contracts_model_inputs(project: SqlProject):
    sql = Path(project.models["gold.training_1s"].path).read_text(encoding="utf-8")
    listed = re.findall(r"AND NOT isnan\(coalesce\(f\.(\w+), 'NaN'::DOUBLE\)\)", sql)
    assert tuple(listed) == CONTRACT_V1.model_inputs


@pytest.mark.parametrize("missing", ["nan", "null"])
@pytest.mark.parametrize(
    ("start", "end", "last_complete"),
    [(0, SECONDS, SECONDS - 1), (70, 130, 120), (0, SECONDS, 80)],
)
def test_rows_and_labels_equal_the_python_path_bit_for_bit(
    project: SqlProject,
    con: duckdb.DuckDBPyConnection,
    missing: str,
    start: int,
    end: int,
    last_complete: int,
):
    start_sec, end_sec, last_complete_sec = (
        START_SEC + start,
        START_SEC + end,
        START_SEC + last_complete,
    )
    table = training(
        project, con, features_1s(missing=missing), start_sec, end_sec, last_complete_sec
    )
    ts_sec, labels, features = expected_rows(start_sec, end_sec, last_complete_sec)
    assert table.schema.names == TRAINING_1S.names
    assert table.schema.types == TRAINING_1S.types
    assert len(ts_sec) > 10
    assert table["ts_sec"].to_numpy().tolist() == ts_sec.tolist()
    label = table["y_log_return_10s"].to_numpy()
    assert label.view(np.int64).tolist() == labels.view(np.int64).tolist()
    got = np.column_stack([table[name].to_numpy() for name in FEATURES])
    assert np.array_equal(got, features, equal_nan=True)
    assert table["ts"].cast(pa.int64()).to_pylist() == (ts_sec * S).tolist()
    assert set(table["source"].to_pylist()) == {"silver.features_1s"}
    assert set(table["ingest_ts"].cast(pa.int64()).to_pylist()) == {INGEST_US + S}


def test_rows_need_every_model_input_and_a_label(project: SqlProject, con):
    """The mask is not vacuous: after the warm-up, the gap and the last seconds drop rows."""
    table = training(project, con, features_1s(), START_SEC, START_SEC + SECONDS, START_SEC + 149)
    seconds = set((table["ts_sec"].to_numpy() - START_SEC).tolist())
    assert min(seconds) >= 59  # the 60-second windows fill at second 59
    # Late in the gap no trade is in t-4..t: the 5-second inputs are undefined.
    assert not seconds & set(range(GAP.start + 4, GAP.stop))
    assert not seconds & set(range(140, SECONDS))  # t + 10 beyond the last second
    assert len(seconds) > 30


def test_no_label_reads_past_the_last_complete_second(project: SqlProject, con):
    last_complete_sec = START_SEC + 90
    table = training(project, con, features_1s(), START_SEC, START_SEC + SECONDS, last_complete_sec)
    assert len(table) > 10
    assert int(table["ts_sec"].to_numpy().max()) + 10 <= last_complete_sec

    # Anything after the last complete second (an open second, a revised price) changes nothing.
    log_price = carried_last_price(bars())[3].copy()
    log_price[91:] = np.log(12345.0)
    revised = training(
        project, con, features_1s(log_price), START_SEC, START_SEC + SECONDS, last_complete_sec
    )
    # spread is NaN throughout, and NaN != NaN; every other column must be identical.
    assert revised.drop_columns(["spread"]).equals(table.drop_columns(["spread"]))


def test_a_missing_second_gives_no_label_rather_than_a_wrong_horizon(project: SqlProject, con):
    features = features_1s()
    complete = training(project, con, features, START_SEC, START_SEC + SECONDS, START_SEC + 149)
    t = int(complete["ts_sec"][5].as_py())
    holed = features.filter(pc.not_equal(features["ts_sec"], t + 10))
    table = training(project, con, holed, START_SEC, START_SEC + SECONDS, START_SEC + 149)
    assert t not in table["ts_sec"].to_pylist()
    assert set(table["ts_sec"].to_pylist()) == set(complete["ts_sec"].to_pylist()) - {t, t + 10}
