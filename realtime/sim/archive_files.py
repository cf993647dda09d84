"""Daily archive files as data.binance.vision serves them, built from the exchange's tape.

One ``.zip`` holding one headerless ``.csv`` of the same base name, and its ``.CHECKSUM``
(``sha256  name``). Timestamps are milliseconds for dates before 2025-01-01 and
microseconds from then on, like the real spot archive. Decimals are written with 8
decimals and booleans as ``True``/``False``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import zipfile

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from realtime.market.fixed_point import format_e8
from realtime.market.quote_qty import quote_qty_e8
from realtime.sim.tape import AggTradeColumns, KlineColumns, TradeColumns

MICROSECOND_ARCHIVES_FROM = dt.date(2025, 1, 1)
_DECIMAL_E8 = pa.decimal128(38, 8)
_PLAIN_FROM_E8 = 100
"""Arrow formats decimal128(38, 8) values from 1e-6 up without an exponent."""


def archive_name(symbol: str, kind: str, day: dt.date, interval: str | None = None) -> str:
    """The zip's file name, e.g. ``BTCUSDT-aggTrades-2026-01-01.zip``."""
    middle = interval if kind == "klines" else kind
    return f"{symbol}-{middle}-{day.isoformat()}.zip"


def checksum_text(zip_bytes: bytes, name: str) -> str:
    """The ``.CHECKSUM`` file's content, as ``sha256sum`` writes it."""
    return f"{hashlib.sha256(zip_bytes).hexdigest()}  {name}\n"


def zip_csv(csv_name: str, csv_bytes: bytes) -> bytes:
    """One CSV member in a deflated zip; fixed timestamps so equal content gives equal bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo(csv_name, date_time=(2000, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, csv_bytes)
    return buffer.getvalue()


def trades_csv(trades: TradeColumns, day: dt.date) -> bytes:
    """``id,price,qty,quoteQty,time,isBuyerMaker,isBestMatch`` rows."""
    quote = quote_qty_e8(trades.price_e8, trades.qty_e8)
    return _csv(
        [
            pa.array(trades.trade_id),
            e8_strings(trades.price_e8),
            e8_strings(trades.qty_e8),
            _big_e8_strings(quote) if quote.dtype == object else e8_strings(quote),
            pa.array(_archive_times(trades.time_us, day)),
            _booleans(trades.is_buyer_maker),
            _booleans(np.ones(len(trades.trade_id), dtype=bool)),
        ]
    )


def agg_trades_csv(aggs: AggTradeColumns, day: dt.date) -> bytes:
    """``a,p,q,f,l,T,m,M`` rows."""
    return _csv(
        [
            pa.array(aggs.agg_trade_id),
            e8_strings(aggs.price_e8),
            e8_strings(aggs.qty_e8),
            pa.array(aggs.first_trade_id),
            pa.array(aggs.last_trade_id),
            pa.array(_archive_times(aggs.time_us, day)),
            _booleans(aggs.is_buyer_maker),
            _booleans(np.ones(len(aggs.agg_trade_id), dtype=bool)),
        ]
    )


def klines_csv(klines: KlineColumns, day: dt.date) -> bytes:
    """The 12 kline columns; volumes may exceed int64 at e8 and are formatted exactly."""
    return _csv(
        [
            pa.array(_archive_times(klines.open_time_us, day)),
            e8_strings(klines.open_e8),
            e8_strings(klines.high_e8),
            e8_strings(klines.low_e8),
            e8_strings(klines.close_e8),
            _big_e8_strings(klines.volume_e8),
            pa.array(_archive_times(klines.close_time_us, day)),
            _big_e8_strings(klines.quote_volume_e8),
            pa.array(klines.trade_count),
            _big_e8_strings(klines.taker_buy_volume_e8),
            _big_e8_strings(klines.taker_buy_quote_volume_e8),
            pa.array(["0"] * len(klines.open_time_us), pa.string()),
        ]
    )


def e8_strings(mantissas: np.ndarray) -> pa.Array:
    """int64 e8 mantissas as decimal strings with 8 decimals, vectorised.

    The int64 is laid out as the low half of a decimal128's unscaled value (the high half is
    its sign extension), so Arrow's decimal-to-string cast does the formatting.
    """
    values = np.asarray(mantissas, dtype=np.int64)
    words = np.empty((len(values), 2), dtype=np.int64)
    words[:, 0] = values
    words[:, 1] = values >> 63
    decimals = pa.Array.from_buffers(_DECIMAL_E8, len(values), [None, pa.py_buffer(words)])
    strings = pc.cast(decimals, pa.string())
    # Arrow writes |value| < 1e-6 in scientific notation ("0E-8", "5E-8"); Binance never does.
    tiny = (values > -_PLAIN_FROM_E8) & (values < _PLAIN_FROM_E8)
    if tiny.any():
        plain = pa.array([format_e8(int(v)) for v in values[tiny]], pa.string())
        strings = pc.replace_with_mask(strings, pa.array(tiny), plain)
    return strings


def _big_e8_strings(mantissas: np.ndarray) -> pa.Array:
    """Exact for Python ints beyond int64 (sums of volumes, quote quantities)."""
    return pa.array([format_e8(int(v)) for v in mantissas], pa.string())


def _archive_times(times_us: np.ndarray, day: dt.date) -> np.ndarray:
    times = np.asarray(times_us, dtype=np.int64)
    return times if day >= MICROSECOND_ARCHIVES_FROM else times // 1_000


def _booleans(values: np.ndarray) -> pa.Array:
    return pc.if_else(pa.array(np.asarray(values, dtype=bool)), "True", "False")


def _csv(columns: list[pa.Array]) -> bytes:
    table = pa.table({f"c{i}": column for i, column in enumerate(columns)})
    sink = io.BytesIO()
    options = pacsv.WriteOptions(include_header=False, quoting_style="none")
    pacsv.write_csv(table, sink, write_options=options)
    return sink.getvalue()
