"""Fetching one time window of aggregate trades for bronze: archive files or REST.

A window is split at UTC midnights. A day that has ended is read from its daily archive file
(one download per day, cached under the download directory and re-verified against the
published checksum); a day still running, or one whose file is not published yet, is read
from REST, paging by ``fromId`` after finding the window's first trade by time. Holes the
REST walk sees are recorded, not raised: the rows it got are kept, and the completeness
check names the hole for the gap sensor to repair.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from btc_platform.lakehouse.completeness import IdRange
from btc_platform.lakehouse.tables import BRONZE_AGG_TRADES, RECORD_VERSION
from realtime.binance.archive import ArchiveClient, ArchiveFile, sha256_file
from realtime.binance.archive_csv import ArchiveKind, read_table
from realtime.binance.archive_errors import ArchiveNotFound, ChecksumMismatch
from realtime.binance.rest import WEIGHT_AGG_TRADES, AggTradePager, BinanceRestClient
from realtime.market import arrow_schemas
from realtime.market.events import AggTrade

log = logging.getLogger(__name__)

US_PER_DAY = 86_400_000_000
ARCHIVE = "archive"
REST = "rest"


@dataclass(frozen=True)
class Segment:
    """A part of the window inside one UTC day, ``[start_us, end_us)``."""

    start_us: int
    end_us: int

    @property
    def day(self) -> dt.date:
        return (dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=self.start_us)).date()


@dataclass
class FetchReport:
    """Where a window's rows came from and what it cost."""

    rows_by_source: dict[str, int] = field(default_factory=dict)
    archive_files: list[str] = field(default_factory=list)
    archive_fallbacks: list[str] = field(default_factory=list)
    """Days read from REST although they had ended, and why."""
    rest_requests: int = 0
    rest_weight: int = 0
    gaps: list[IdRange] = field(default_factory=list)
    """Id ranges the REST walk found missing."""
    seconds: float = 0.0

    @property
    def sources(self) -> str:
        return "+".join(sorted(self.rows_by_source)) or "none"


def day_segments(start_us: int, end_us: int) -> Iterator[Segment]:
    """Split ``[start_us, end_us)`` at UTC midnights."""
    position = start_us
    while position < end_us:
        day_end = (position // US_PER_DAY + 1) * US_PER_DAY
        yield Segment(position, min(day_end, end_us))
        position = min(day_end, end_us)


class AggTradeFetcher:
    """Reads windows of one symbol's aggregate trades from Binance (or the local exchange)."""

    def __init__(
        self,
        symbol: str,
        rest: BinanceRestClient,
        archive: ArchiveClient,
        download_dir: Path,
    ) -> None:
        self.symbol = symbol.upper()
        self.rest = rest
        self.archive = archive
        self.download_dir = download_dir

    async def fetch(
        self, start_us: int, end_us: int, *, now_us: int, ingest_ts_us: int
    ) -> tuple[pa.Table, FetchReport]:
        """The bronze rows of ``[start_us, end_us)``, ordered by id, and how they were got.

        ``now_us`` is the exchange's time, which decides which days have ended.
        """
        started = time.monotonic()
        report = FetchReport()
        parts: list[pa.Table] = []
        for segment in day_segments(start_us, end_us):
            rows = None
            day_end_us = (segment.start_us // US_PER_DAY + 1) * US_PER_DAY
            if day_end_us <= now_us:
                rows = await self._from_archive(segment, report)
            if rows is None:
                rows = await self._from_rest(segment, report)
            parts.append(rows)
        trades = pa.concat_tables(parts) if parts else _empty()
        report.seconds = time.monotonic() - started
        return _with_envelope(self.symbol, trades, ingest_ts_us), report

    async def _from_archive(self, segment: Segment, report: FetchReport) -> pa.Table | None:
        archive_file = ArchiveFile.daily(ArchiveKind.AGG_TRADES, segment.day, symbol=self.symbol)
        try:
            path = await self._cached_download(archive_file)
        except ArchiveNotFound:
            report.archive_fallbacks.append(f"{segment.day}: not published")
            return None
        except ChecksumMismatch as error:
            log.warning("archive %s rejected, reading REST instead: %s", archive_file.path, error)
            report.archive_fallbacks.append(f"{segment.day}: {error}")
            return None
        day = read_table(path, ArchiveKind.AGG_TRADES)
        rows = _in_window(day, segment)
        report.archive_files.append(archive_file.filename)
        report.rows_by_source[ARCHIVE] = report.rows_by_source.get(ARCHIVE, 0) + rows.num_rows
        return rows.append_column("source", pa.array([ARCHIVE] * rows.num_rows, pa.string()))

    async def _cached_download(self, archive_file: ArchiveFile) -> Path:
        """The verified file, downloaded once: a cached copy is kept while it still matches
        the published checksum (Binance republishes a day's file when it corrects it)."""
        cached = self.download_dir / archive_file.filename
        if cached.exists():
            published = await self.archive.fetch_checksum(archive_file)
            if sha256_file(cached) == published:
                return cached
        return await self.archive.download(archive_file, self.download_dir)

    async def _from_rest(self, segment: Segment, report: FetchReport) -> pa.Table:
        pager = AggTradePager(
            self.rest,
            self.symbol,
            start_time_us=segment.start_us,
            end_time_us=segment.end_us - 1,
            record_gaps=True,
        )
        requests_before = self.rest.budget.requests
        trades: list[AggTrade] = []
        async for page in pager:
            trades.extend(page)
        requests = self.rest.budget.requests - requests_before
        report.rest_requests += requests
        report.rest_weight += requests * WEIGHT_AGG_TRADES
        report.gaps.extend(IdRange(first, last) for first, last in pager.gaps)
        rows = agg_trades_table(trades)
        report.rows_by_source[REST] = report.rows_by_source.get(REST, 0) + rows.num_rows
        return rows.append_column("source", pa.array([REST] * rows.num_rows, pa.string()))


def _in_window(day: pa.Table, segment: Segment) -> pa.Table:
    times = pc.cast(day["transact_time"], pa.int64())
    mask = pc.and_(pc.greater_equal(times, segment.start_us), pc.less(times, segment.end_us))
    return day.filter(mask)


def agg_trades_table(trades: list[AggTrade]) -> pa.Table:
    """Aggregate trades as an ``arrow_schemas.AGG_TRADES`` table (times in µs, UTC)."""
    columns = {
        "agg_trade_id": [t.agg_trade_id for t in trades],
        "price_e8": [t.price_e8 for t in trades],
        "qty_e8": [t.qty_e8 for t in trades],
        "first_trade_id": [t.first_trade_id for t in trades],
        "last_trade_id": [t.last_trade_id for t in trades],
        "transact_time": pa.array([t.transact_time_us for t in trades], pa.int64()),
        "is_buyer_maker": pa.array([t.is_buyer_maker for t in trades], pa.bool_()),
        "is_best_match": pa.array([t.is_best_match for t in trades], pa.bool_()),
    }
    return pa.table(columns).cast(arrow_schemas.AGG_TRADES)


def _empty() -> pa.Table:
    return arrow_schemas.AGG_TRADES.empty_table().append_column("source", pa.array([], pa.string()))


def _with_envelope(symbol: str, trades: pa.Table, ingest_ts_us: int) -> pa.Table:
    n = trades.num_rows
    trades = trades.sort_by("agg_trade_id")
    return pa.table(
        {
            "symbol": pa.array([symbol] * n, pa.string()),
            **{name: trades[name] for name in arrow_schemas.AGG_TRADES.names},
            "source": trades["source"],
            "ingest_ts": pa.array([ingest_ts_us] * n, pa.int64()).cast(arrow_schemas.TIMESTAMP_US),
            "version": pa.array([RECORD_VERSION] * n, pa.int32()),
        }
    ).cast(BRONZE_AGG_TRADES.schema)
