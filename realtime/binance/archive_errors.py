"""Typed errors of the data.binance.vision archive path: download, checksum and CSV parsing.

Every error derives from ``ArchiveError`` so a backfill job can catch one type; the subtypes
tell it what to do next (retry later, re-download, or stop and look at the file).
"""

from __future__ import annotations

from pathlib import Path


class ArchiveError(Exception):
    """Base of every archive download, verification and parsing failure."""


class ArchiveNotFound(ArchiveError):
    """The archive (or its .CHECKSUM) does not exist yet: daily files appear the next day."""

    def __init__(self, url: str) -> None:
        super().__init__(f"not found (HTTP 404): {url}")
        self.url = url


class ArchiveDownloadError(ArchiveError):
    """An HTTP status other than 200/404, or a network failure or timeout, while downloading.

    ``status`` is None when no response arrived (connection error, timeout).
    """

    def __init__(self, url: str, detail: str, status: int | None = None) -> None:
        prefix = f"HTTP {status}" if status is not None else "download failed"
        super().__init__(f"{prefix}: {url}: {detail}")
        self.url = url
        self.status = status


class ChecksumMismatch(ArchiveError):
    """The SHA-256 of a zip differs from the digest in its .CHECKSUM file (hex, lower case)."""

    def __init__(self, filename: str, expected: str, actual: str) -> None:
        super().__init__(f"{filename}: sha256 mismatch: expected {expected}, actual {actual}")
        self.filename = filename
        self.expected = expected
        self.actual = actual


class ArchiveParseError(ArchiveError):
    """A zip or CSV row that does not convert exactly to the fixed-point schema.

    ``row`` is the 1-based data row (header excluded) when known; ``column`` the CSV column
    name when known. pyarrow reports the column of a conversion error but not its row.
    """

    def __init__(
        self,
        path: str | Path,
        detail: str,
        *,
        column: str | None = None,
        row: int | None = None,
    ) -> None:
        where = Path(path).name
        if column is not None:
            where += f", column {column!r}"
        if row is not None:
            where += f", row {row}"
        super().__init__(f"{where}: {detail}")
        self.path = Path(path)
        self.detail = detail
        self.column = column
        self.row = row


class CorruptArchive(ArchiveParseError):
    """The zip itself is unreadable (bad central directory, deflate stream or member CRC)."""


class MixedTimeUnits(ArchiveParseError):
    """One file holds both millisecond and microsecond timestamps, so its unit is ambiguous."""
