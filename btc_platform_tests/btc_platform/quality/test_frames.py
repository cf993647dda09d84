"""Arrow to pandas for validation: nulls stay nulls, ints stay exact ints, NaN means undefined."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pyarrow as pa

from btc_platform.quality.frames import validation_frame

BIG_ID = 2**53 + 1
"""Not representable as float64: a float conversion would round it."""


def test_int_column_with_nulls_stays_an_exact_nullable_int():
    frame = validation_frame(pa.table({"first_trade_id": pa.array([BIG_ID, None], pa.int64())}))
    column = frame["first_trade_id"]
    assert str(column.dtype) == "int64[pyarrow]"
    assert column.iloc[0] == BIG_ID
    assert column.isna().tolist() == [False, True]


def test_int_width_is_kept():
    frame = validation_frame(pa.table({"version": pa.array([1, 2], pa.int32())}))
    assert str(frame["version"].dtype) == "int32[pyarrow]"


def test_float_nan_and_null_both_read_as_undefined():
    frame = validation_frame(pa.table({"ret_1s": pa.array([0.001, np.nan, None], pa.float64())}))
    assert frame["ret_1s"].dtype == np.float64
    assert frame["ret_1s"].isna().tolist() == [False, True, True]


def test_strings_timestamps_and_flags_take_dtypes_with_a_missing_marker():
    table = pa.table(
        {
            "source": pa.array(["live", None]),
            "ingest_ts": pa.array([1_767_225_600_000_000, None], pa.timestamp("us", tz="UTC")),
            "is_buyer_maker": pa.array([True, None]),
        }
    )
    frame = validation_frame(table)
    assert str(frame["source"].dtype) == "str"
    assert str(frame["ingest_ts"].dtype) == "datetime64[us, UTC]"
    assert str(frame["is_buyer_maker"].dtype) == "bool[pyarrow]"
    assert frame.isna().iloc[1].all()
    assert not frame.isna().iloc[0].any()


def test_decimal_notional_beyond_int64_stays_exact():
    notional = 98_000 * 10**8 * 3 * 10**8 + 1  # > 2**63
    frame = validation_frame(pa.table({"notional_e16": pa.array([notional], pa.decimal128(38, 0))}))
    assert isinstance(frame["notional_e16"].dtype, pd.ArrowDtype)
    assert frame["notional_e16"].iloc[0] == Decimal(notional)
