"""data.binance.vision spot archives: file naming, SHA-256 verification and streaming download.

Parsing lives in ``archive_csv`` and the errors in ``archive_errors``; both are re-exported
here so callers import the archive path from one module.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import BinaryIO

import aiohttp

from realtime.binance.archive_csv import (
    DEFAULT_BLOCK_SIZE,
    ArchiveCsvReader,
    ArchiveKind,
    TimeUnit,
    iter_batches,
    read_table,
    schema_for,
)
from realtime.binance.archive_errors import (
    ArchiveDownloadError,
    ArchiveError,
    ArchiveNotFound,
    ArchiveParseError,
    ChecksumMismatch,
    CorruptArchive,
    MixedTimeUnits,
)
from realtime.binance.http_session import SessionOwner

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_BLOCK_SIZE",
    "DEFAULT_TIMEOUT",
    "KLINE_INTERVALS",
    "ArchiveClient",
    "ArchiveCsvReader",
    "ArchiveDownloadError",
    "ArchiveError",
    "ArchiveFile",
    "ArchiveKind",
    "ArchiveNotFound",
    "ArchiveParseError",
    "ArchivePeriod",
    "ChecksumMismatch",
    "CorruptArchive",
    "MixedTimeUnits",
    "TimeUnit",
    "iter_batches",
    "parse_checksum",
    "read_table",
    "schema_for",
    "sha256_file",
    "verify_checksum",
]

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://data.binance.vision"
# No total limit: a monthly trades file is gigabytes. A stalled read or connect still fails.
DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=60)
_CHUNK_SIZE = 1 << 20

# Interval names as they appear in kline paths (``1mo`` replaces the API's ``1M``).
KLINE_INTERVALS = (
    "1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h",
    "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1mo",
)  # fmt: skip
_DAILY_KLINE_INTERVALS = KLINE_INTERVALS[: KLINE_INTERVALS.index("1d") + 1]

_SYMBOL = re.compile(r"[A-Z0-9]+")
_CHECKSUM_LINE = re.compile(r"([0-9a-fA-F]{64}) [ *]?(\S.*?)\s*")


class ArchivePeriod(StrEnum):
    """How much one archive file covers; the value is its name in archive paths."""

    DAILY = "daily"
    MONTHLY = "monthly"


@dataclass(frozen=True, slots=True, kw_only=True)
class ArchiveFile:
    """One data.binance.vision spot archive, named as on the server.

    ``date`` is the UTC day of a daily file; for a monthly file it is normalised to the first
    of its month. ``interval`` is required for klines and forbidden otherwise.
    """

    kind: ArchiveKind
    date: dt.date
    symbol: str = "BTCUSDT"
    period: ArchivePeriod = ArchivePeriod.DAILY
    interval: str | None = None
    market: str = "spot"

    def __post_init__(self) -> None:
        # Frozen: normalise through object.__setattr__ so equal files compare and hash equal.
        object.__setattr__(self, "kind", ArchiveKind(self.kind))
        object.__setattr__(self, "period", ArchivePeriod(self.period))
        if self.market != "spot":
            raise ValueError(f"only spot archives are supported, not {self.market!r}")
        if not _SYMBOL.fullmatch(self.symbol):
            raise ValueError(f"symbol must be upper-case alphanumeric: {self.symbol!r}")
        if self.period is ArchivePeriod.MONTHLY:
            object.__setattr__(self, "date", self.date.replace(day=1))
        if self.kind is ArchiveKind.KLINES:
            allowed = (
                _DAILY_KLINE_INTERVALS if self.period is ArchivePeriod.DAILY else KLINE_INTERVALS
            )
            if self.interval not in allowed:
                raise ValueError(f"{self.period} klines interval must be one of {allowed}")
        elif self.interval is not None:
            raise ValueError(f"{self.kind} archives take no interval, got {self.interval!r}")

    @classmethod
    def daily(
        cls,
        kind: ArchiveKind | str,
        date: dt.date,
        *,
        symbol: str = "BTCUSDT",
        interval: str | None = None,
    ) -> ArchiveFile:
        """The daily file of ``kind`` for UTC day ``date``."""
        return cls(kind=ArchiveKind(kind), date=date, symbol=symbol, interval=interval)

    @classmethod
    def monthly(
        cls,
        kind: ArchiveKind | str,
        month: dt.date,
        *,
        symbol: str = "BTCUSDT",
        interval: str | None = None,
    ) -> ArchiveFile:
        """The monthly file of ``kind`` for the month containing ``month``."""
        return cls(
            kind=ArchiveKind(kind),
            date=month,
            symbol=symbol,
            period=ArchivePeriod.MONTHLY,
            interval=interval,
        )

    @property
    def filename(self) -> str:
        """``BTCUSDT-aggTrades-2024-01-02.zip``, ``BTCUSDT-1m-2020-01.zip``."""
        label = self.interval if self.kind is ArchiveKind.KLINES else self.kind.value
        stamp = self.date.strftime("%Y-%m-%d" if self.period is ArchivePeriod.DAILY else "%Y-%m")
        return f"{self.symbol}-{label}-{stamp}.zip"

    @property
    def checksum_filename(self) -> str:
        return f"{self.filename}.CHECKSUM"

    @property
    def directory(self) -> str:
        """The server directory, e.g. ``data/spot/monthly/klines/BTCUSDT/1m``."""
        parts = ["data", self.market, self.period.value, self.kind.value, self.symbol]
        if self.interval is not None:
            parts.append(self.interval)
        return "/".join(parts)

    @property
    def path(self) -> str:
        """Path relative to the site root, e.g. ``data/spot/daily/aggTrades/BTCUSDT/….zip``."""
        return f"{self.directory}/{self.filename}"

    @property
    def checksum_path(self) -> str:
        return f"{self.path}.CHECKSUM"


def parse_checksum(text: str) -> tuple[str, str]:
    """Parse ``sha256sum`` output (``<64 hex>  <filename>``) into (lower-case digest, filename)."""
    for line in text.splitlines():
        if line.strip():
            match = _CHECKSUM_LINE.fullmatch(line)
            if match is None:
                break
            return match[1].lower(), match[2]
    raise ArchiveError(f"not a sha256 CHECKSUM: {text[:200]!r}")


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def verify_checksum(zip_path: str | Path, checksum: str | Path) -> str:
    """Check a local zip against its CHECKSUM (a path, or the file's text); return the digest.

    A ``str`` that starts with 64 hex digits is CHECKSUM text, any other ``str`` a path. The
    filename inside the CHECKSUM is not compared, so a renamed copy still verifies.
    """
    zip_path = Path(zip_path)
    if isinstance(checksum, str) and _CHECKSUM_LINE.match(checksum.lstrip()):
        text = checksum
    else:
        text = Path(checksum).read_text(encoding="ascii")
    expected, _ = parse_checksum(text)
    actual = sha256_file(zip_path)
    if actual != expected:
        raise ChecksumMismatch(zip_path.name, expected, actual)
    return actual


class ArchiveClient(SessionOwner):
    """Downloads archive files over HTTP, verified against their published SHA-256.

    Owns (and closes) its session only when none is passed in. Use as ``async with``, or
    call ``close()``.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        session: aiohttp.ClientSession | None = None,
        *,
        timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
        chunk_size: int = _CHUNK_SIZE,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.chunk_size = chunk_size
        super().__init__(session)

    def url(self, relative_path: str) -> str:
        return f"{self.base_url}/{relative_path}"

    async def fetch_checksum(self, archive_file: ArchiveFile) -> str:
        """The published hex SHA-256 of ``archive_file``; ``ArchiveNotFound`` if unpublished."""
        url = self.url(archive_file.checksum_path)
        text = await self._get_text(url)
        digest, named = parse_checksum(text)
        if named != archive_file.filename:
            raise ArchiveError(f"{url} is the checksum of {named!r}, not {archive_file.filename}")
        return digest

    async def download(self, archive_file: ArchiveFile, dest_dir: str | Path) -> Path:
        """Download ``archive_file`` into ``dest_dir`` (created if needed); return its path.

        The zip streams to a temporary file in ``dest_dir`` while being hashed and is renamed
        to its archive filename only if the digest matches the .CHECKSUM, which is saved
        beside it. On any failure nothing new is left at the destination.
        """
        dest_dir = Path(dest_dir)
        dest_dir.mkdir(parents=True, exist_ok=True)
        # The small checksum first: an unpublished day fails before any large transfer.
        expected = await self.fetch_checksum(archive_file)
        target = dest_dir / archive_file.filename
        url = self.url(archive_file.path)
        started = time.monotonic()
        fd, part_name = tempfile.mkstemp(dir=dest_dir, prefix=f".{target.name}.", suffix=".part")
        part = Path(part_name)
        try:
            with os.fdopen(fd, "wb") as sink:
                actual, size = await self._stream(url, sink)
            if actual != expected:
                raise ChecksumMismatch(archive_file.filename, expected, actual)
            _write_atomically(
                dest_dir / archive_file.checksum_filename,
                f"{expected}  {archive_file.filename}\n",
            )
            os.replace(part, target)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        elapsed = time.monotonic() - started
        logger.info("downloaded %s: %d bytes in %.1f s, sha256 ok", url, size, elapsed)
        return target

    async def _get_text(self, url: str) -> str:
        try:
            async with self._ensure_session().get(url, timeout=self.timeout) as response:
                _raise_for_status(url, response)
                return await response.text(encoding="ascii")
        except (aiohttp.ClientError, TimeoutError, UnicodeDecodeError) as exc:
            raise ArchiveDownloadError(url, f"{type(exc).__name__}: {exc}") from exc

    async def _stream(self, url: str, sink: BinaryIO) -> tuple[str, int]:
        """Write the body of ``url`` to ``sink`` chunk by chunk; return (hex sha256, bytes)."""
        digest = hashlib.sha256()
        size = 0
        try:
            async with self._ensure_session().get(url, timeout=self.timeout) as response:
                _raise_for_status(url, response)
                # Synchronous writes of <= chunk_size bytes: a local disk absorbs them faster
                # than a thread hop per chunk would cost.
                async for chunk in response.content.iter_chunked(self.chunk_size):
                    digest.update(chunk)
                    sink.write(chunk)
                    size += len(chunk)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ArchiveDownloadError(url, f"{type(exc).__name__}: {exc}") from exc
        return digest.hexdigest(), size


def _raise_for_status(url: str, response: aiohttp.ClientResponse) -> None:
    if response.status == 404:
        raise ArchiveNotFound(url)
    if response.status != 200:
        raise ArchiveDownloadError(url, response.reason or "unexpected status", response.status)


def _write_atomically(path: Path, text: str) -> None:
    fd, part_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(text)
        os.replace(part_name, path)
    except BaseException:
        Path(part_name).unlink(missing_ok=True)
        raise
