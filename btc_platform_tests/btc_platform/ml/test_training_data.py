"""What model_candidate trains on: one symbol's gold rows, in a lake that holds several."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from btc_platform.defs.ml.assets import TrainingRun, _training_data
from btc_platform.lakehouse import tables
from btc_platform_tests.btc_platform.ml.synthetic import START_SEC, gold_rows

US_PER_S = 1_000_000
DAY_US = 86_400 * US_PER_S


def _as_symbol(rows: pa.Table, symbol: str, shift_s: int) -> pa.Table:
    ts_sec = pc.add(rows["ts_sec"], shift_s)
    rows = rows.set_column(rows.schema.get_field_index("ts_sec"), "ts_sec", ts_sec)
    ts = pc.multiply(ts_sec, US_PER_S).cast(pa.timestamp("us", tz="UTC"))
    rows = rows.set_column(rows.schema.get_field_index("ts"), "ts", ts)
    symbol_column = pa.array([symbol] * rows.num_rows)
    return rows.set_column(rows.schema.get_field_index("symbol"), "symbol", symbol_column)


def test_a_second_symbols_rows_never_reach_the_first_symbols_training_set(iceberg_catalog):
    btc = gold_rows(400, seed=3, planted=False)
    eth = _as_symbol(btc, "ETHUSDT", shift_s=3_600)  # newer: it would move the window too
    start_us = START_SEC * US_PER_S
    for symbol, rows in (("BTCUSDT", btc), ("ETHUSDT", eth)):
        tables.overwrite_window(
            iceberg_catalog,
            tables.GOLD_TRAINING_1S,
            rows,
            start_us,
            start_us + DAY_US,
            symbol=symbol,
        )

    for run in (TrainingRun(mode="full", days=1), TrainingRun(mode="incremental", hours=1)):
        _, end_us, gold = _training_data(iceberg_catalog, "BTCUSDT", run)

        assert set(gold["symbol"].to_pylist()) == {"BTCUSDT"}
        assert gold.num_rows > 0
        if run.mode == "incremental":  # the newest BTCUSDT second ends the window
            assert end_us == (pc.max(btc["ts_sec"]).as_py() + 1) * US_PER_S
            assert gold.num_rows == btc.num_rows
