"""Fetching windows of aggregate trades for bronze, against the real local exchange.

One paused exchange serves the module: its market opens half an hour before the midnight
of 2026-01-02 and its clock stands half an hour after it, so 2026-01-01 has ended (its
archive file is published) and 2026-01-02 is running (REST only).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import pytest_asyncio

from btc_platform.lakehouse.bronze_fetch import (
    ARCHIVE,
    REST,
    AggTradeFetcher,
    Segment,
    agg_trades_table,
    day_segments,
)
from btc_platform.lakehouse.completeness import IdRange
from btc_platform.lakehouse.tables import BRONZE_AGG_TRADES, RECORD_VERSION
from realtime.binance.archive import ArchiveClient, ArchiveFile, sha256_file
from realtime.binance.rate_budget import RateBudget
from realtime.binance.rest import WEIGHT_AGG_TRADES, AggTradePager, BinanceRestClient
from realtime.market.arrow_schemas import AGG_TRADES
from realtime.sim.exchange import ExchangeConfig, LocalExchange
from realtime.sim.faults import Fault, FaultKind, parse_fault
from realtime.sim.market_model import MarketModel, MarketParams

US = 1_000_000
MINUTE = 60 * US
DAY_US = 86_400 * US
MIDNIGHT_US = 1_767_312_000_000_000  # 2026-01-02T00:00:00Z
ENDED_DAY = dt.date(2026, 1, 1)
NOW_US = MIDNIGHT_US + 30 * MINUTE
INGEST_US = NOW_US + MINUTE
SYMBOL = "BTCUSDT"
ARCHIVE_NAME = "BTCUSDT-aggTrades-2026-01-01.zip"

ENDED_WINDOW = (MIDNIGHT_US - 20 * MINUTE, MIDNIGHT_US - 10 * MINUTE)
RUNNING_WINDOW = (MIDNIGHT_US + 5 * MINUTE, MIDNIGHT_US + 15 * MINUTE)
ACROSS_MIDNIGHT = (MIDNIGHT_US - 5 * MINUTE, MIDNIGHT_US + 5 * MINUTE)

in_module_loop = pytest.mark.asyncio(loop_scope="module")
"""The tests share the module's exchange, so they run on its event loop."""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def exchange() -> AsyncIterator[LocalExchange]:
    source = MarketModel(MarketParams(seed=21, start_time_us=MIDNIGHT_US - 30 * MINUTE))
    config = ExchangeConfig(speed=0, history_s=3_600, weight_limit=None)
    async with LocalExchange(source, config) as running:
        assert running.now_us() == NOW_US
        assert running.market.archive_days() == [ENDED_DAY]
        yield running


@pytest.fixture
def faults(exchange: LocalExchange):
    """Apply faults to the shared exchange; every one is lifted after the test."""
    yield lambda spec: exchange.apply_fault(parse_fault(spec))
    exchange.apply_fault(Fault(FaultKind.CLEAR))


@pytest_asyncio.fixture(loop_scope="module")
async def fetcher(exchange: LocalExchange, tmp_path: Path) -> AsyncIterator[AggTradeFetcher]:
    async with (
        BinanceRestClient(exchange.rest_url, budget=RateBudget(limit=None)) as rest,
        ArchiveClient(exchange.archive_url) as archive,
    ):
        yield AggTradeFetcher(SYMBOL.lower(), rest, archive, tmp_path / "downloads")


async def fetch(fetcher: AggTradeFetcher, window: tuple[int, int], now_us: int = NOW_US):
    return await fetcher.fetch(*window, now_us=now_us, ingest_ts_us=INGEST_US)


async def paged_by_time(exchange: LocalExchange, window: tuple[int, int]) -> pa.Table:
    """The window's aggregate trades as ``AggTradePager`` walks them from a start time."""
    async with BinanceRestClient(exchange.rest_url, budget=RateBudget(limit=None)) as client:
        pager = AggTradePager(
            client, SYMBOL, start_time_us=window[0], end_time_us=window[1] - 1, limit=1000
        )
        trades = [trade async for page in pager for trade in page]
    return agg_trades_table(trades)


def ids(rows: pa.Table) -> list[int]:
    return rows["agg_trade_id"].to_pylist()


def times_us(rows: pa.Table) -> np.ndarray:
    return pc.cast(rows["transact_time"], pa.int64()).to_numpy()


def trade_columns(rows: pa.Table) -> pa.Table:
    return rows.select(AGG_TRADES.names).cast(AGG_TRADES)


# -- day_segments --------------------------------------------------------------------------------


def test_a_window_inside_one_day_is_one_segment():
    assert list(day_segments(*ENDED_WINDOW)) == [Segment(*ENDED_WINDOW)]


def test_a_window_is_split_at_every_midnight():
    start, end = MIDNIGHT_US - MINUTE, MIDNIGHT_US + DAY_US + MINUTE
    assert list(day_segments(start, end)) == [
        Segment(start, MIDNIGHT_US),
        Segment(MIDNIGHT_US, MIDNIGHT_US + DAY_US),
        Segment(MIDNIGHT_US + DAY_US, end),
    ]


def test_a_window_ending_at_midnight_does_not_reach_the_next_day():
    segments = list(day_segments(MIDNIGHT_US - DAY_US, MIDNIGHT_US))
    assert segments == [Segment(MIDNIGHT_US - DAY_US, MIDNIGHT_US)]
    assert segments[0].day == ENDED_DAY


def test_an_empty_window_has_no_segment():
    assert list(day_segments(MIDNIGHT_US, MIDNIGHT_US)) == []


def test_a_segment_is_dated_by_its_utc_day():
    assert Segment(MIDNIGHT_US - 1, MIDNIGHT_US).day == ENDED_DAY
    assert Segment(MIDNIGHT_US, MIDNIGHT_US + 1).day == dt.date(2026, 1, 2)


# -- fetching ------------------------------------------------------------------------------------


@in_module_loop
async def test_a_window_of_a_day_that_has_ended_is_read_from_the_archive(exchange, fetcher):
    rows, report = await fetch(fetcher, ENDED_WINDOW)
    expected = await paged_by_time(exchange, ENDED_WINDOW)
    assert expected.num_rows > 1_000
    assert report.rows_by_source == {ARCHIVE: expected.num_rows}
    assert report.sources == ARCHIVE
    assert report.archive_files == [ARCHIVE_NAME]
    assert report.archive_fallbacks == []
    assert (report.rest_requests, report.rest_weight) == (0, 0)
    assert rows.schema == BRONZE_AGG_TRADES.schema
    # The archive's rows are REST's rows, column for column.
    assert trade_columns(rows).equals(expected)
    assert set(rows["source"].to_pylist()) == {ARCHIVE}
    assert set(rows["symbol"].to_pylist()) == {SYMBOL}
    assert set(pc.cast(rows["ingest_ts"], pa.int64()).to_pylist()) == {INGEST_US}
    assert set(rows["version"].to_pylist()) == {RECORD_VERSION}


@in_module_loop
async def test_the_archive_file_is_downloaded_once_and_reused(fetcher):
    first, _ = await fetch(fetcher, ENDED_WINDOW)
    cached = fetcher.download_dir / ARCHIVE_NAME
    stat = cached.stat()
    second, report = await fetch(fetcher, ENDED_WINDOW)
    again = cached.stat()
    assert (again.st_ino, again.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)
    assert report.archive_files == [ARCHIVE_NAME]
    assert second.drop_columns(["ingest_ts"]).equals(first.drop_columns(["ingest_ts"]))
    assert sorted(p.name for p in fetcher.download_dir.iterdir()) == [
        ARCHIVE_NAME,
        ARCHIVE_NAME + ".CHECKSUM",
    ]


@in_module_loop
async def test_a_cached_file_that_no_longer_matches_its_checksum_is_downloaded_again(fetcher):
    first, _ = await fetch(fetcher, ENDED_WINDOW)
    cached = fetcher.download_dir / ARCHIVE_NAME
    published = await fetcher.archive.fetch_checksum(
        ArchiveFile.daily("aggTrades", ENDED_DAY, symbol=SYMBOL)
    )
    cached.write_bytes(b"a file damaged on disk")
    second, report = await fetch(fetcher, ENDED_WINDOW)
    assert sha256_file(cached) == published
    assert report.rows_by_source == {ARCHIVE: first.num_rows}
    assert ids(second) == ids(first)


@in_module_loop
async def test_a_window_of_the_running_day_is_read_from_rest(exchange, fetcher):
    rows, report = await fetch(fetcher, RUNNING_WINDOW)
    expected = await paged_by_time(exchange, RUNNING_WINDOW)
    assert expected.num_rows > 1_000
    assert report.rows_by_source == {REST: expected.num_rows}
    assert report.archive_files == []
    assert report.archive_fallbacks == []
    assert report.gaps == []
    assert report.rest_requests >= expected.num_rows // 1_000 + 1
    assert report.rest_weight == report.rest_requests * WEIGHT_AGG_TRADES
    assert rows.schema == BRONZE_AGG_TRADES.schema
    assert trade_columns(rows).equals(expected)
    assert set(rows["source"].to_pylist()) == {REST}


@in_module_loop
async def test_a_day_is_read_from_rest_while_the_exchange_says_it_is_running(exchange, fetcher):
    """``now_us`` decides which days have ended, not the wall clock or the window."""
    rows, report = await fetch(fetcher, ENDED_WINDOW, now_us=MIDNIGHT_US - 1)
    assert report.rows_by_source == {REST: rows.num_rows}
    assert report.archive_files == report.archive_fallbacks == []
    assert ids(rows) == ids(await paged_by_time(exchange, ENDED_WINDOW))


@in_module_loop
async def test_a_window_across_midnight_reads_both_and_joins_them(exchange, fetcher):
    rows, report = await fetch(fetcher, ACROSS_MIDNIGHT)
    times = times_us(rows)
    before_midnight = int((times < MIDNIGHT_US).sum())
    assert report.rows_by_source == {
        ARCHIVE: before_midnight,
        REST: rows.num_rows - before_midnight,
    }
    assert before_midnight > 0
    assert rows.num_rows - before_midnight > 0
    assert report.sources == "archive+rest"
    assert report.archive_files == [ARCHIVE_NAME]
    got = ids(rows)
    assert got == list(range(got[0], got[0] + len(got)))  # contiguous across midnight
    assert got == ids(await paged_by_time(exchange, ACROSS_MIDNIGHT))
    sources = np.array(rows["source"].to_pylist())
    assert set(sources[times < MIDNIGHT_US]) == {ARCHIVE}
    assert set(sources[times >= MIDNIGHT_US]) == {REST}
    assert times.min() >= ACROSS_MIDNIGHT[0]
    assert times.max() < ACROSS_MIDNIGHT[1]


@in_module_loop
async def test_a_withheld_id_range_is_reported_as_a_gap_and_the_rest_is_kept(fetcher, faults):
    clean, _ = await fetch(fetcher, RUNNING_WINDOW)
    all_ids = ids(clean)
    first, last = all_ids[1_200], all_ids[1_249]
    faults({"fault": "withhold", "ids": "agg_trade", "first_id": first, "last_id": last})
    rows, report = await fetch(fetcher, RUNNING_WINDOW)
    assert report.gaps == [IdRange(first, last)]
    assert report.rows_by_source == {REST: len(all_ids) - 50}
    kept = pc.invert(pc.is_in(clean["agg_trade_id"], pa.array(range(first, last + 1))))
    assert trade_columns(rows).equals(trade_columns(clean.filter(kept)))


@in_module_loop
async def test_a_corrupt_archive_falls_back_to_rest_and_says_so(exchange, fetcher, faults):
    faults({"fault": "corrupt_archive", "kind": "aggTrades", "date": ENDED_DAY.isoformat()})
    rows, report = await fetch(fetcher, ENDED_WINDOW)
    expected = await paged_by_time(exchange, ENDED_WINDOW)
    assert report.rows_by_source == {REST: expected.num_rows}
    assert report.archive_files == []
    (fallback,) = report.archive_fallbacks
    assert fallback.startswith(f"{ENDED_DAY}: {ARCHIVE_NAME}: sha256 mismatch")
    assert trade_columns(rows).equals(expected)
    assert set(rows["source"].to_pylist()) == {REST}
    assert not (fetcher.download_dir / ARCHIVE_NAME).exists()


@in_module_loop
async def test_a_day_without_a_published_file_falls_back_to_rest(fetcher):
    before_the_market = (MIDNIGHT_US - DAY_US - 20 * MINUTE, MIDNIGHT_US - DAY_US - 10 * MINUTE)
    rows, report = await fetch(fetcher, before_the_market)
    assert report.archive_fallbacks == ["2025-12-31: not published"]
    assert report.rows_by_source == {REST: 0}
    assert rows.num_rows == 0
    assert rows.schema == BRONZE_AGG_TRADES.schema


@in_module_loop
async def test_an_empty_window_fetches_nothing(exchange, fetcher):
    requests = exchange.rest.requests
    rows, report = await fetch(fetcher, (MIDNIGHT_US, MIDNIGHT_US))
    assert rows.num_rows == 0
    assert rows.schema == BRONZE_AGG_TRADES.schema
    assert report.rows_by_source == {}
    assert report.sources == "none"
    assert exchange.rest.requests == requests
