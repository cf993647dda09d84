"""Arrow tables as the pandas frames the expectation suites read.

The lake's tables mark a missing integer, id, flag or decimal with an Arrow null, and an
undefined float feature with NaN (``schema_v1.json``: "null is stored as NaN"). Pandas'
default conversion would turn an int64 column with one null into float64, so an id of
2**53 + 1 would round and a type expectation would see a float. Here:

- integers, booleans and decimals stay Arrow-backed (``pd.ArrowDtype``): exact, same width,
  nulls stay ``<NA>``;
- floats, strings and timestamps take pandas' own dtypes, which have a missing marker of
  their own (NaN, NaT): a NaN feature then counts as missing for ``not null`` and ``mostly``
  expectations and is skipped by range expectations, which is what "undefined" means.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa


def validation_frame(table: pa.Table) -> pd.DataFrame:
    """``table`` as a pandas frame whose dtypes keep the lake's null semantics (see module)."""
    return table.to_pandas(types_mapper=_pandas_dtype)


def _pandas_dtype(arrow_type: pa.DataType) -> pd.ArrowDtype | None:
    if (
        pa.types.is_integer(arrow_type)
        or pa.types.is_boolean(arrow_type)
        or pa.types.is_decimal(arrow_type)
    ):
        return pd.ArrowDtype(arrow_type)
    return None  # pyarrow's default conversion
