"""Daily archive files built from the tape: exact decimals, zip + CHECKSUM, ms then µs times."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from realtime.binance.archive import ArchiveFile, ChecksumMismatch, verify_checksum
from realtime.binance.archive_csv import read_table
from realtime.market.events import Trade, TradeBatch
from realtime.market.fixed_point import INT64_MAX, INT64_MIN, format_e8
from realtime.sim import archive_files
from realtime.sim.tape import TradeTape, quote_qty_e8

SYMBOL = "BTCUSDT"
US_PER_DAY = 86_400_000_000
MINUTE_US = 60_000_000
TICK_E8 = 1_000_000
LOT_E8 = 1_000
EPOCH = dt.date(1970, 1, 1)


def day_start_us(day: dt.date) -> int:
    return (day - EPOCH).days * US_PER_DAY


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.integers(INT64_MIN, INT64_MAX),
            st.integers(-(10**9), 10**9),
            st.sampled_from([INT64_MIN, INT64_MIN + 1, -1, 0, 1, 10**8, INT64_MAX]),
        ),
        max_size=30,
    )
)
def test_e8_strings_equal_format_e8_for_any_int64(values: list[int]) -> None:
    strings = archive_files.e8_strings(np.array(values, dtype=np.int64))
    assert strings.type == pa.string()
    assert strings.to_pylist() == [format_e8(v) for v in values]


def test_archive_name_and_checksum_text() -> None:
    day = dt.date(2026, 1, 1)
    assert archive_files.archive_name(SYMBOL, "trades", day) == "BTCUSDT-trades-2026-01-01.zip"
    assert archive_files.archive_name(SYMBOL, "klines", day, "1m") == "BTCUSDT-1m-2026-01-01.zip"
    for kind, interval in [("trades", None), ("aggTrades", None), ("klines", "1m")]:
        expected = ArchiveFile.daily(kind, day, interval=interval).filename
        assert archive_files.archive_name(SYMBOL, kind, day, interval) == expected


def market_day(day: dt.date, *, seed: int = 3, minutes: int = 30) -> TradeTape:
    """A random tape around the start of ``day``: a little of the day before, then ``day``.

    Times have sub-millisecond parts, so the millisecond files show their truncation.
    """
    rng = np.random.default_rng(seed)
    tape = TradeTape(SYMBOL, 7_000)
    time_us = day_start_us(day) - 2 * MINUTE_US
    trade_id = 1_000
    price = 90_000 * 10**8
    end_us = day_start_us(day) + minutes * MINUTE_US
    while time_us < end_us:
        time_us += int(rng.integers(1, 3_000_000))
        n = int(rng.integers(1, 5))
        maker = bool(rng.integers(0, 2))
        trades = []
        for i in range(n):
            price += int(rng.integers(-2, 3)) * TICK_E8
            qty = int(rng.integers(1, 200_000)) * LOT_E8
            trades.append(Trade(SYMBOL, trade_id + i, price, qty, maker, time_us, time_us))
        trade_id += n
        tape.record(TradeBatch(SYMBOL, time_us, time_us, tuple(trades)))
    return tape


def write_archive(tmp_path: Path, name: str, csv: bytes) -> Path:
    content = archive_files.zip_csv(name[:-4] + ".csv", csv)
    path = tmp_path / name
    path.write_bytes(content)
    (tmp_path / f"{name}.CHECKSUM").write_text(archive_files.checksum_text(content, name))
    return path


def ints(table: pa.Table, name: str) -> list[int]:
    column = table.column(name)
    if pa.types.is_timestamp(column.type):
        column = column.cast(pa.int64())
    return column.to_pylist()


def decimals_e8(table: pa.Table, name: str) -> list[int]:
    return [int(value.scaleb(8)) for value in table.column(name).to_pylist()]


def test_zip_and_checksum_verify_and_a_changed_byte_does_not(tmp_path: Path) -> None:
    day = dt.date(2026, 1, 1)
    tape = market_day(day)
    start = day_start_us(day)
    name = archive_files.archive_name(SYMBOL, "trades", day)
    path = write_archive(
        tmp_path, name, archive_files.trades_csv(tape.day(start, start + US_PER_DAY), day)
    )
    checksum = tmp_path / f"{name}.CHECKSUM"
    digest = verify_checksum(path, checksum)
    assert checksum.read_text() == f"{digest}  {name}\n"
    # Equal content gives equal bytes (fixed zip timestamps), so the checksum is stable.
    again = archive_files.zip_csv(
        name[:-4] + ".csv", archive_files.trades_csv(tape.day(start, start + US_PER_DAY), day)
    )
    assert again == path.read_bytes()

    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0x01
    path.write_bytes(bytes(content))
    with pytest.raises(ChecksumMismatch):
        verify_checksum(path, checksum)


@pytest.mark.parametrize(
    ("day", "unit_us"), [(dt.date(2026, 1, 1), 1), (dt.date(2024, 12, 31), 1_000)]
)
def test_trades_file_reads_back_as_the_tape(tmp_path: Path, day: dt.date, unit_us: int) -> None:
    tape = market_day(day)
    start = day_start_us(day)
    trades = tape.day(start, start + US_PER_DAY)
    assert len(trades.trade_id) > 100
    assert int(trades.time_us[0]) >= start > int(tape.trades().time_us[0])
    name = archive_files.archive_name(SYMBOL, "trades", day)
    table = read_table(
        write_archive(tmp_path, name, archive_files.trades_csv(trades, day)), "trades"
    )

    assert ints(table, "trade_id") == trades.trade_id.tolist()
    assert ints(table, "price_e8") == trades.price_e8.tolist()
    assert ints(table, "qty_e8") == trades.qty_e8.tolist()
    assert ints(table, "quote_qty_e8") == quote_qty_e8(trades.price_e8, trades.qty_e8).tolist()
    assert ints(table, "transact_time") == (trades.time_us // unit_us * unit_us).tolist()
    assert table.column("is_buyer_maker").to_pylist() == trades.is_buyer_maker.tolist()
    assert set(table.column("is_best_match").to_pylist()) == {True}


@pytest.mark.parametrize(
    ("day", "unit_us"), [(dt.date(2025, 1, 1), 1), (dt.date(2024, 12, 31), 1_000)]
)
def test_agg_trades_file_reads_back_as_the_tape(tmp_path: Path, day: dt.date, unit_us: int) -> None:
    tape = market_day(day)
    start = day_start_us(day)
    aggs = tape.agg_trades()
    lo, hi = np.searchsorted(aggs.time_us, [start, start + US_PER_DAY])
    aggs = aggs.take(slice(int(lo), int(hi)))
    assert len(aggs.agg_trade_id) > 100
    name = archive_files.archive_name(SYMBOL, "aggTrades", day)
    path = write_archive(tmp_path, name, archive_files.agg_trades_csv(aggs, day))
    table = read_table(path, "aggTrades")

    assert ints(table, "agg_trade_id") == aggs.agg_trade_id.tolist()
    assert ints(table, "price_e8") == aggs.price_e8.tolist()
    assert ints(table, "qty_e8") == aggs.qty_e8.tolist()
    assert ints(table, "first_trade_id") == aggs.first_trade_id.tolist()
    assert ints(table, "last_trade_id") == aggs.last_trade_id.tolist()
    assert ints(table, "transact_time") == (aggs.time_us // unit_us * unit_us).tolist()
    assert table.column("is_buyer_maker").to_pylist() == aggs.is_buyer_maker.tolist()


@pytest.mark.parametrize(
    ("day", "unit_us"), [(dt.date(2026, 1, 1), 1), (dt.date(2023, 4, 4), 1_000)]
)
def test_klines_file_reads_back_as_the_tape(tmp_path: Path, day: dt.date, unit_us: int) -> None:
    tape = market_day(day, minutes=40)
    start = day_start_us(day)
    klines = tape.klines(MINUTE_US, start, start + US_PER_DAY - 1, 1440, start)
    assert len(klines.open_time_us) == 41
    assert int(klines.open_time_us[0]) == start
    name = archive_files.archive_name(SYMBOL, "klines", day, "1m")
    path = write_archive(tmp_path, name, archive_files.klines_csv(klines, day))
    table = read_table(path, "klines")

    assert ints(table, "open_time") == klines.open_time_us.tolist()
    # The close time is the interval's last unit: ...59.999 in ms files, ...59.999999 in µs.
    close_times = ints(table, "close_time")
    assert close_times == (klines.close_time_us // unit_us * unit_us).tolist()
    assert close_times[0] == start + MINUTE_US - unit_us
    for name, column in [("open_e8", 1), ("high_e8", 2), ("low_e8", 3), ("close_e8", 4)]:
        assert ints(table, name) == klines[column].tolist()
    assert ints(table, "trade_count") == klines.trade_count.tolist()
    assert decimals_e8(table, "volume") == klines.volume_e8.tolist()
    assert decimals_e8(table, "quote_volume") == [int(v) for v in klines.quote_volume_e8]
    assert decimals_e8(table, "taker_buy_base_volume") == klines.taker_buy_volume_e8.tolist()
    assert decimals_e8(table, "taker_buy_quote_volume") == [
        int(v) for v in klines.taker_buy_quote_volume_e8
    ]
    assert sum(klines.trade_count.tolist()) == len(tape.day(start, start + US_PER_DAY).trade_id)


def test_klines_volumes_beyond_int64_are_written_exactly(tmp_path: Path) -> None:
    day = dt.date(2026, 1, 1)
    start = day_start_us(day)
    tape = TradeTape(SYMBOL, 1)
    price, qty = 1_000_000 * 10**8, 9_000 * 10**8
    for k in range(20):
        trade = Trade(SYMBOL, k + 1, price, qty, False, start + k, start + k)
        tape.record(TradeBatch(SYMBOL, start + k, start + k, (trade,)))
    klines = tape.klines(MINUTE_US, start, start + US_PER_DAY - 1, 1440, start)
    name = archive_files.archive_name(SYMBOL, "klines", day, "1m")
    table = read_table(
        write_archive(tmp_path, name, archive_files.klines_csv(klines, day)), "klines"
    )
    expected_quote = Decimal(price * qty // 10**8 * 20).scaleb(-8)
    assert table.column("quote_volume").to_pylist() == [expected_quote]
    assert table.column("taker_buy_quote_volume").to_pylist() == [expected_quote]
    assert expected_quote.scaleb(8) > 2**63
