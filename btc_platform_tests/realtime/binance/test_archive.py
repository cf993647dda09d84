"""data.binance.vision archives: paths, SHA-256, HTTP download and exact fixed-point parsing.

Everything is real: the official kline archive from the fixtures, zips built here in the
spot CSV format, and a local aiohttp static server laid out like data.binance.vision.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import socket
import zipfile
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import aiohttp
import numpy as np
import pyarrow as pa
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from realtime.binance.archive import (
    ArchiveClient,
    ArchiveCsvReader,
    ArchiveDownloadError,
    ArchiveError,
    ArchiveFile,
    ArchiveKind,
    ArchiveNotFound,
    ArchiveParseError,
    ArchivePeriod,
    ChecksumMismatch,
    CorruptArchive,
    MixedTimeUnits,
    iter_batches,
    parse_checksum,
    read_table,
    verify_checksum,
)
from realtime.market import arrow_schemas
from realtime.market.fixed_point import INT64_MAX, INT64_MIN, format_e8, parse_e8

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "binance_archive_klines"
KLINE_ZIP = FIXTURES / "BTCUSDT-1m-2020-01-01.zip"
KLINE_CHECKSUM = FIXTURES / "BTCUSDT-1m-2020-01-01.zip.CHECKSUM"
KLINE_SHA256 = "dd579c62368ded93d3f01a1904575b932279e32936e181c062763e605793c1c2"
KLINE_FILE = ArchiveFile.daily("klines", dt.date(2020, 1, 1), interval="1m")
UTC = dt.UTC


def write_zip(path: Path, lines: list[str], *, member: str | None = None) -> Path:
    """Zip ``lines`` as one headerless CSV member named like the zip, as Binance does."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member or path.with_suffix(".csv").name, "".join(f"{x}\n" for x in lines))
    return path


def corrupt_copy(source: Path, dest: Path) -> Path:
    """Copy ``source`` to ``dest`` with one byte of the compressed data flipped."""
    data = bytearray(source.read_bytes())
    data[len(data) // 2] ^= 0x01
    dest.write_bytes(bytes(data))
    return dest


def kline_csv_rows() -> list[list[str]]:
    with zipfile.ZipFile(KLINE_ZIP) as archive:
        text = archive.read("BTCUSDT-1m-2020-01-01.csv").decode("ascii")
    return [line.split(",") for line in text.splitlines()]


# --- naming -------------------------------------------------------------------------------


def test_archive_file_paths_match_data_binance_vision():
    agg = ArchiveFile.daily(ArchiveKind.AGG_TRADES, dt.date(2024, 1, 2))
    assert agg.path == "data/spot/daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2024-01-02.zip"
    assert agg.checksum_path == agg.path + ".CHECKSUM"
    assert agg.filename == "BTCUSDT-aggTrades-2024-01-02.zip"

    trades = ArchiveFile.monthly("trades", dt.date(2023, 4, 5))
    assert trades.path == "data/spot/monthly/trades/BTCUSDT/BTCUSDT-trades-2023-04.zip"
    assert trades.date == dt.date(2023, 4, 1)
    assert trades == ArchiveFile.monthly("trades", dt.date(2023, 4, 30))

    klines = ArchiveFile.monthly("klines", dt.date(2020, 1, 1), interval="1m")
    assert klines.path == "data/spot/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2020-01.zip"
    assert klines.checksum_path == (
        "data/spot/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2020-01.zip.CHECKSUM"
    )
    assert KLINE_FILE.path == "data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2020-01-01.zip"
    assert KLINE_FILE.checksum_filename == "BTCUSDT-1m-2020-01-01.zip.CHECKSUM"

    explicit = ArchiveFile(
        market="spot",
        period=ArchivePeriod.MONTHLY,
        kind=ArchiveKind.KLINES,
        symbol="ETHBTC",
        date=dt.date(2021, 7, 1),
        interval="1mo",
    )
    assert explicit.path == "data/spot/monthly/klines/ETHBTC/1mo/ETHBTC-1mo-2021-07.zip"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "klines", "date": dt.date(2020, 1, 1)},  # klines need an interval
        {"kind": "klines", "date": dt.date(2020, 1, 1), "interval": "1w"},  # not daily
        {"kind": "klines", "date": dt.date(2020, 1, 1), "interval": "1M"},  # written 1mo
        {"kind": "aggTrades", "date": dt.date(2020, 1, 1), "interval": "1m"},
        {"kind": "aggTrades", "date": dt.date(2020, 1, 1), "symbol": "btcusdt"},
        {"kind": "aggTrades", "date": dt.date(2020, 1, 1), "market": "um"},
        {"kind": "bookTicker", "date": dt.date(2020, 1, 1)},
    ],
)
def test_archive_file_rejects_names_the_server_does_not_have(kwargs):
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        ArchiveFile(**kwargs)


def test_parse_checksum_reads_sha256sum_output():
    assert parse_checksum(f"{KLINE_SHA256.upper()}  x.zip\n") == (KLINE_SHA256, "x.zip")
    assert parse_checksum(f"{KLINE_SHA256} *x.zip") == (KLINE_SHA256, "x.zip")
    with pytest.raises(ArchiveError, match="not a sha256 CHECKSUM"):
        parse_checksum("<html>Access Denied</html>")


# --- the real kline archive ---------------------------------------------------------------


def test_real_kline_archive_verifies():
    assert verify_checksum(KLINE_ZIP, KLINE_CHECKSUM) == KLINE_SHA256
    assert verify_checksum(str(KLINE_ZIP), str(KLINE_CHECKSUM)) == KLINE_SHA256
    assert verify_checksum(KLINE_ZIP, KLINE_CHECKSUM.read_text()) == KLINE_SHA256
    assert hashlib.sha256(KLINE_ZIP.read_bytes()).hexdigest() == KLINE_SHA256


def test_real_kline_archive_parses_to_the_klines_schema():
    reader = ArchiveCsvReader(KLINE_ZIP, "klines")
    table = pa.Table.from_batches(list(reader), schema=arrow_schemas.KLINES)

    assert reader.time_unit == "ms"
    assert table.num_rows == 1440
    assert table.schema.equals(arrow_schemas.KLINES)
    assert read_table(KLINE_ZIP, ArchiveKind.KLINES).equals(table)

    # 1577836800000,7195.24000000,7196.25000000,7183.14000000,7186.68000000,51.64281200,
    # 1577836859999,371233.51835535,493,19.59823000,140888.41428273,0
    assert table.slice(0, 1).to_pylist() == [
        {
            "open_time": dt.datetime(2020, 1, 1, tzinfo=UTC),
            "open_e8": 719_524_000_000,
            "high_e8": 719_625_000_000,
            "low_e8": 718_314_000_000,
            "close_e8": 718_668_000_000,
            "volume": Decimal("51.64281200"),
            "close_time": dt.datetime(2020, 1, 1, 0, 0, 59, 999_000, tzinfo=UTC),
            "quote_volume": Decimal("371233.51835535"),
            "trade_count": 493,
            "taker_buy_base_volume": Decimal("19.59823000"),
            "taker_buy_quote_volume": Decimal("140888.41428273"),
        }
    ]

    open_us = table.column("open_time").cast(pa.int64()).to_numpy()
    close_us = table.column("close_time").cast(pa.int64()).to_numpy()
    assert open_us[0] == 1_577_836_800_000_000
    assert (np.diff(open_us) == 60_000_000).all()
    assert (close_us - open_us == 59_999_000).all()


def test_real_kline_archive_matches_the_csv_text_in_every_row():
    """Cross-check against the kernel's scalar parser: the vectorised route is exact too."""
    table = read_table(KLINE_ZIP, "klines")
    rows = kline_csv_rows()
    assert len(rows) == table.num_rows
    e8_columns = {"open_e8": 1, "high_e8": 2, "low_e8": 3, "close_e8": 4}
    for name, index in e8_columns.items():
        assert table.column(name).to_pylist() == [parse_e8(row[index]) for row in rows]
    volume_columns = {
        "volume": 5,
        "quote_volume": 7,
        "taker_buy_base_volume": 9,
        "taker_buy_quote_volume": 10,
    }
    for name, index in volume_columns.items():
        assert table.column(name).to_pylist() == [Decimal(row[index]) for row in rows]
    assert table.column("trade_count").to_pylist() == [int(row[8]) for row in rows]
    open_us = table.column("open_time").cast(pa.int64()).to_pylist()
    assert open_us == [int(row[0]) * 1000 for row in rows]


def test_corrupted_copy_fails_the_checksum(tmp_path):
    copy = corrupt_copy(KLINE_ZIP, tmp_path / KLINE_ZIP.name)
    actual = hashlib.sha256(copy.read_bytes()).hexdigest()

    with pytest.raises(ChecksumMismatch) as caught:
        verify_checksum(copy, KLINE_CHECKSUM)

    message = str(caught.value)
    assert "BTCUSDT-1m-2020-01-01.zip" in message
    assert KLINE_SHA256 in message
    assert actual in message
    assert (caught.value.expected, caught.value.actual) == (KLINE_SHA256, actual)


def test_corrupted_zip_body_is_a_typed_parse_error(tmp_path):
    copy = corrupt_copy(KLINE_ZIP, tmp_path / KLINE_ZIP.name)
    with pytest.raises(CorruptArchive, match=r"BTCUSDT-1m-2020-01-01\.zip"):
        read_table(copy, "klines")


# --- download over real HTTP --------------------------------------------------------------


async def _internal_error(request: web.Request) -> web.Response:
    raise web.HTTPInternalServerError(text="boom")


@pytest.fixture
async def archive_site(tmp_path: Path) -> AsyncIterator[str]:
    """A local static server laid out like data.binance.vision; yields its base URL.

    2020-01-01 is the real file; 2020-01-02 has a valid CHECKSUM but corrupted bytes;
    2020-01-03 does not exist; 2020-01-04 has a zip but no CHECKSUM.
    """
    root = tmp_path / "site"
    good = root / KLINE_FILE.path
    good.parent.mkdir(parents=True)
    shutil.copy(KLINE_ZIP, good)
    shutil.copy(KLINE_CHECKSUM, root / KLINE_FILE.checksum_path)

    bad_file = ArchiveFile.daily("klines", dt.date(2020, 1, 2), interval="1m")
    corrupt_copy(KLINE_ZIP, root / bad_file.path)
    (root / bad_file.checksum_path).write_text(f"{KLINE_SHA256}  {bad_file.filename}")

    unchecked = ArchiveFile.daily("klines", dt.date(2020, 1, 4), interval="1m")
    shutil.copy(KLINE_ZIP, root / unchecked.path)

    app = web.Application()
    app.router.add_get("/broken/{tail:.*}", _internal_error)
    app.router.add_static("/", root)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


async def test_download_verifies_and_places_the_file(archive_site, tmp_path):
    dest = tmp_path / "dest" / "klines"
    async with ArchiveClient(archive_site + "/", chunk_size=4096) as client:
        path = await client.download(KLINE_FILE, dest)

    assert path == dest / "BTCUSDT-1m-2020-01-01.zip"
    assert path.read_bytes() == KLINE_ZIP.read_bytes()
    assert sorted(p.name for p in dest.iterdir()) == [
        "BTCUSDT-1m-2020-01-01.zip",
        "BTCUSDT-1m-2020-01-01.zip.CHECKSUM",
    ]
    assert verify_checksum(path, dest / KLINE_FILE.checksum_filename) == KLINE_SHA256
    assert read_table(path, "klines").num_rows == 1440


async def test_download_with_a_caller_session(archive_site, tmp_path):
    async with aiohttp.ClientSession() as session:
        client = ArchiveClient(archive_site, session)
        assert await client.fetch_checksum(KLINE_FILE) == KLINE_SHA256
        await client.download(KLINE_FILE, tmp_path)
        await client.close()  # must leave the caller's session open
        assert not session.closed
    assert (tmp_path / KLINE_FILE.filename).exists()


async def test_download_of_a_corrupted_file_leaves_nothing(archive_site, tmp_path):
    bad_file = ArchiveFile.daily("klines", dt.date(2020, 1, 2), interval="1m")
    dest = tmp_path / "dest"
    async with ArchiveClient(archive_site) as client:
        with pytest.raises(ChecksumMismatch) as caught:
            await client.download(bad_file, dest)

    assert bad_file.filename in str(caught.value)
    assert caught.value.expected == KLINE_SHA256
    assert KLINE_SHA256 in str(caught.value)
    assert caught.value.actual in str(caught.value)
    assert list(dest.iterdir()) == []


@pytest.mark.parametrize("day", [dt.date(2020, 1, 3), dt.date(2020, 1, 4)])
async def test_download_of_an_unpublished_file_is_not_found(archive_site, tmp_path, day):
    missing = ArchiveFile.daily("klines", day, interval="1m")
    async with ArchiveClient(archive_site) as client:
        with pytest.raises(ArchiveNotFound, match=missing.filename):
            await client.download(missing, tmp_path / "dest")
    assert list((tmp_path / "dest").iterdir()) == []


async def test_download_server_error_is_typed(archive_site, tmp_path):
    async with ArchiveClient(archive_site + "/broken") as client:
        with pytest.raises(ArchiveDownloadError) as caught:
            await client.download(KLINE_FILE, tmp_path / "dest")
    assert caught.value.status == 500
    assert "HTTP 500" in str(caught.value)


async def test_download_connection_failure_is_typed(tmp_path):
    with socket.socket() as probe:  # a port that was free a moment ago refuses connections
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with ArchiveClient(f"http://127.0.0.1:{port}") as client:
        with pytest.raises(ArchiveDownloadError) as caught:
            await client.download(KLINE_FILE, tmp_path / "dest")
    assert caught.value.status is None


# --- aggTrades and trades built here, in the spot CSV format ------------------------------

US_ROWS = [
    "0,0.20000000,50.00000000,0,0,1735689600010866,False,True",
    "1,93576.00000000,0.00010000,1,3,1735689600999999,True,True",
]
MS_ROWS = [
    "3071245454,28165.47000000,0.00357000,3589000000,3589000001,1680652800123,True,True",
    "3071245455,28165.48000000,1.00000000,3589000002,3589000002,1680652800124,False,True",
]


def test_agg_trades_in_microseconds_parse_exactly(tmp_path):
    path = write_zip(tmp_path / "BTCUSDT-aggTrades-2025-01-01.zip", US_ROWS)
    reader = ArchiveCsvReader(path, "aggTrades")
    table = pa.Table.from_batches(list(reader))

    assert reader.time_unit == "us"
    assert table.schema.equals(arrow_schemas.AGG_TRADES)
    assert table.to_pylist() == [
        {
            "agg_trade_id": 0,
            "price_e8": 20_000_000,
            "qty_e8": 5_000_000_000,
            "first_trade_id": 0,
            "last_trade_id": 0,
            "transact_time": dt.datetime(2025, 1, 1, 0, 0, 0, 10_866, tzinfo=UTC),
            "is_buyer_maker": False,
            "is_best_match": True,
        },
        {
            "agg_trade_id": 1,
            "price_e8": 9_357_600_000_000,
            "qty_e8": 10_000,
            "first_trade_id": 1,
            "last_trade_id": 3,
            "transact_time": dt.datetime(2025, 1, 1, 0, 0, 0, 999_999, tzinfo=UTC),
            "is_buyer_maker": True,
            "is_best_match": True,
        },
    ]


def test_agg_trades_in_milliseconds_parse_exactly(tmp_path):
    path = write_zip(tmp_path / "BTCUSDT-aggTrades-2023-04-05.zip", MS_ROWS)
    reader = ArchiveCsvReader(path, ArchiveKind.AGG_TRADES)
    table = pa.Table.from_batches(list(reader))

    assert reader.time_unit == "ms"
    assert table.column("price_e8").to_pylist() == [2_816_547_000_000, 2_816_548_000_000]
    assert table.column("qty_e8").to_pylist() == [357_000, 100_000_000]
    assert table.column("transact_time").to_pylist() == [
        dt.datetime(2023, 4, 5, 0, 0, 0, 123_000, tzinfo=UTC),
        dt.datetime(2023, 4, 5, 0, 0, 0, 124_000, tzinfo=UTC),
    ]
    assert table.column("first_trade_id").to_pylist() == [3_589_000_000, 3_589_000_002]


def test_trades_in_both_units_parse_exactly(tmp_path):
    us_path = write_zip(
        tmp_path / "BTCUSDT-trades-2025-01-01.zip",
        ["51175358,17.80180000,5.69000000,101.29224200,1735689600010866,True,True"],
    )
    ms_path = write_zip(
        tmp_path / "BTCUSDT-trades-2023-04-05.zip",
        ["3071245454,28165.47000000,0.00357000,100.55072790,1680652800123,False,True"],
    )

    us_table = read_table(us_path, "trades")
    ms_table = read_table(ms_path, "trades")

    assert us_table.schema.equals(arrow_schemas.TRADES)
    assert ms_table.schema.equals(arrow_schemas.TRADES)
    assert us_table.to_pylist() == [
        {
            "trade_id": 51_175_358,
            "price_e8": 1_780_180_000,
            "qty_e8": 569_000_000,
            "quote_qty_e8": 10_129_224_200,
            "transact_time": dt.datetime(2025, 1, 1, 0, 0, 0, 10_866, tzinfo=UTC),
            "is_buyer_maker": True,
            "is_best_match": True,
        }
    ]
    assert ms_table.to_pylist() == [
        {
            "trade_id": 3_071_245_454,
            "price_e8": 2_816_547_000_000,
            "qty_e8": 357_000,
            "quote_qty_e8": 10_055_072_790,
            "transact_time": dt.datetime(2023, 4, 5, 0, 0, 0, 123_000, tzinfo=UTC),
            "is_buyer_maker": False,
            "is_best_match": True,
        }
    ]


def test_a_header_row_is_tolerated(tmp_path):
    header = "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,m,M"
    plain = write_zip(tmp_path / "plain.zip", US_ROWS)
    headed = write_zip(tmp_path / "headed.zip", [header, *US_ROWS])
    assert read_table(headed, "aggTrades").equals(read_table(plain, "aggTrades"))


@pytest.mark.parametrize("lines", [[], ["trade_id,price,qty,quote_qty,time,m,M"]])
def test_an_empty_file_is_an_empty_table(tmp_path, lines):
    path = write_zip(tmp_path / "empty.zip", lines)
    table = read_table(path, "trades")
    assert table.num_rows == 0
    assert table.schema.equals(arrow_schemas.TRADES)


def test_nine_decimal_places_are_exact_only_when_the_ninth_is_zero(tmp_path):
    zero = write_zip(
        tmp_path / "zero.zip", ["0,0.200000000,50.00000000,0,0,1735689600010866,False,True"]
    )
    inexact = write_zip(
        tmp_path / "inexact.zip", ["0,0.200000001,50.00000000,0,0,1735689600010866,False,True"]
    )

    assert read_table(zero, "aggTrades").column("price_e8").to_pylist() == [20_000_000]
    with pytest.raises(ArchiveParseError, match="more than 8 decimal places") as caught:
        read_table(inexact, "aggTrades")
    assert caught.value.column == "price_e8"
    assert "inexact.zip" in str(caught.value)


@pytest.mark.parametrize("value", ["92233720368.54775808", "-92233720368.54775809"])
def test_a_price_outside_int64_e8_is_rejected_with_its_row(tmp_path, value):
    path = write_zip(
        tmp_path / "huge.zip",
        [US_ROWS[0], f"1,{value},1.00000000,1,1,1735689600010867,False,True"],
    )
    with pytest.raises(ArchiveParseError, match="does not fit an int64 e8") as caught:
        read_table(path, "aggTrades")
    assert (caught.value.column, caught.value.row) == ("price_e8", 2)


def test_int64_e8_limits_are_exact(tmp_path):
    path = write_zip(
        tmp_path / "limits.zip",
        [
            f"0,{format_e8(INT64_MAX)},{format_e8(INT64_MIN)},0,0,1735689600010866,False,True",
        ],
    )
    table = read_table(path, "aggTrades")
    assert table.column("price_e8").to_pylist() == [INT64_MAX]
    assert table.column("qty_e8").to_pylist() == [INT64_MIN]


@pytest.mark.parametrize(
    ("row", "column"),
    [
        ("0,abc,50.00000000,0,0,1735689600010866,False,True", "price_e8"),
        ("0,0.20000000,,0,0,1735689600010866,False,True", "qty_e8"),
        ("x,0.20000000,50.00000000,0,0,1735689600010866,False,True", "agg_trade_id"),
        ("0,0.20000000,50.00000000,0,0,2025-01-01,False,True", "transact_time"),
        ("0,0.20000000,50.00000000,0,0,1735689600010866,yes,True", "is_buyer_maker"),
        ("0,0.20000000,50.00000000,0,0,1735689600010866,False", None),  # 7 columns
    ],
)
def test_row_level_garbage_is_a_typed_parse_error(tmp_path, row, column):
    path = write_zip(tmp_path / "BTCUSDT-aggTrades-2025-01-01.zip", [*US_ROWS, row])
    with pytest.raises(ArchiveParseError, match=r"BTCUSDT-aggTrades-2025-01-01\.zip") as caught:
        read_table(path, "aggTrades")
    assert caught.value.column == column
    assert not isinstance(caught.value, CorruptArchive)


def test_a_zip_without_exactly_one_member_is_rejected(tmp_path):
    path = tmp_path / "two.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.csv", US_ROWS[0])
        archive.writestr("b.csv", US_ROWS[1])
    with pytest.raises(ArchiveParseError, match="exactly one CSV member"):
        read_table(path, "aggTrades")

    not_a_zip = tmp_path / "plain.zip"
    not_a_zip.write_text(US_ROWS[0])
    with pytest.raises(CorruptArchive):
        read_table(not_a_zip, "aggTrades")


# --- time units ---------------------------------------------------------------------------


def test_mixed_units_in_one_block_raise(tmp_path):
    path = write_zip(tmp_path / "mixed.zip", [US_ROWS[0], MS_ROWS[0], US_ROWS[1]])
    with pytest.raises(MixedTimeUnits, match="mix ms and µs") as caught:
        read_table(path, "aggTrades")
    assert (caught.value.column, caught.value.row) == ("transact_time", 2)
    assert isinstance(caught.value, ArchiveParseError)


def test_mixed_units_across_blocks_raise(tmp_path):
    ms_row = "7,28165.47000000,0.00357000,9,9,1680652800123,True,True"
    us_row = "7,28165.47000000,0.00357000,9,9,1735689600010866,True,True"
    path = write_zip(tmp_path / "mixed.zip", [ms_row] * 2000 + [us_row] * 2000)
    # Blocks of exactly 100 ms rows, so the first µs row opens a block of its own and the
    # check across blocks (not the one within a block) must catch it.
    block_size = 100 * (len(ms_row) + 1)
    with pytest.raises(MixedTimeUnits, match="started in ms") as caught:
        for _ in iter_batches(path, "aggTrades", block_size=block_size):
            pass
    assert (caught.value.column, caught.value.row) == ("transact_time", 2001)


def test_kline_open_and_close_times_must_share_a_unit(tmp_path):
    row = kline_csv_rows()[0]
    row[6] = str(int(row[6]) * 1000)  # close time in µs, open time still in ms
    path = write_zip(tmp_path / "klines.zip", [",".join(row)])
    with pytest.raises(MixedTimeUnits) as caught:
        read_table(path, "klines")
    assert caught.value.column == "close_time"


def test_microsecond_klines_parse(tmp_path):
    row = kline_csv_rows()[0]
    row[0] = str(int(row[0]) * 1000)
    row[6] = str(int(row[6]) * 1000 + 999)
    path = write_zip(tmp_path / "klines.zip", [",".join(row)])
    table = read_table(path, "klines")
    assert table.column("open_time").to_pylist() == [dt.datetime(2020, 1, 1, tzinfo=UTC)]
    assert table.column("close_time").to_pylist() == [
        dt.datetime(2020, 1, 1, 0, 0, 59, 999_999, tzinfo=UTC)
    ]


# --- streaming ----------------------------------------------------------------------------


def test_large_file_streams_in_batches_that_concatenate_exactly(tmp_path):
    n = 300_000
    rng = np.random.default_rng(7)
    ids = np.arange(10_000_000, 10_000_000 + n, dtype=np.int64)
    price = rng.integers(1_000_000_000_000, 10_000_000_000_000, n, dtype=np.int64)
    qty = rng.integers(1, 100_000_000_000, n, dtype=np.int64)
    time_us = 1_735_689_600_000_000 + np.cumsum(rng.integers(0, 5_000, n, dtype=np.int64))
    maker = rng.integers(0, 2, n).astype(bool)
    lines = [
        f"{i},{format_e8(p)},{format_e8(q)},{2 * i},{2 * i + 1},{t},{m},True"
        for i, p, q, t, m in zip(
            ids.tolist(),
            price.tolist(),
            qty.tolist(),
            time_us.tolist(),
            maker.tolist(),
            strict=True,
        )
    ]
    path = write_zip(tmp_path / "BTCUSDT-aggTrades-2025-01-01.zip", lines)

    batches = list(iter_batches(path, "aggTrades", block_size=1 << 20))

    assert len(batches) > 5
    assert all(batch.schema.equals(arrow_schemas.AGG_TRADES) for batch in batches)
    expected = pa.Table.from_arrays(
        [
            pa.array(ids),
            pa.array(price),
            pa.array(qty),
            pa.array(2 * ids),
            pa.array(2 * ids + 1),
            pa.array(time_us).cast(arrow_schemas.TIMESTAMP_US),
            pa.array(maker),
            pa.array(np.ones(n, dtype=bool)),
        ],
        schema=arrow_schemas.AGG_TRADES,
    )
    assert pa.Table.from_batches(batches).equals(expected)

    # A consumer may stop early: closing the generator closes the zip and the reader.
    partial = iter_batches(path, "aggTrades", block_size=1 << 20)
    assert next(partial).equals(batches[0])
    partial.close()


# --- property: any int64 e8 value round-trips exactly -------------------------------------

int64s = st.integers(min_value=INT64_MIN, max_value=INT64_MAX)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(values=st.lists(st.tuples(int64s, int64s, int64s), min_size=1, max_size=20))
def test_any_int64_e8_trade_round_trips_exactly(tmp_path, values):
    lines = [
        f"{i},{format_e8(p)},{format_e8(q)},{format_e8(qq)},1680652800123,True,False"
        for i, (p, q, qq) in enumerate(values)
    ]
    path = write_zip(tmp_path / "BTCUSDT-trades-2023-04-05.zip", lines)
    table = read_table(path, "trades")
    assert table.column("price_e8").to_pylist() == [p for p, _, _ in values]
    assert table.column("qty_e8").to_pylist() == [q for _, q, _ in values]
    assert table.column("quote_qty_e8").to_pylist() == [qq for _, _, qq in values]
