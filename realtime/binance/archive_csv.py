"""Stream data.binance.vision spot CSV zips into the fixed-point Arrow schemas.

The single CSV member is read straight from the zip stream by pyarrow's streaming CSV reader,
one block at a time, so memory is bounded by the block size, not the file size. Decimal
strings become int64 e8 mantissas (prices, trade quantities) or decimal128(38, 8) (kline
volumes) with no float on the way: pyarrow parses them as decimal128(38, 8), which rejects a
ninth significant decimal instead of rounding, and the e8 mantissa is the unscaled integer.
Timestamps are detected per file as ms or µs (>= 1e14 is µs) and become timestamp[us, UTC].
"""

from __future__ import annotations

import logging
import re
import zipfile
import zlib
from collections.abc import Iterator
from enum import Enum, StrEnum, auto
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from realtime.binance.archive_errors import ArchiveParseError, CorruptArchive, MixedTimeUnits
from realtime.market import arrow_schemas
from realtime.market.fixed_point import INT64_MAX, INT64_MIN, US_THRESHOLD

logger = logging.getLogger(__name__)

# Large enough that per-block overhead vanishes (~50k aggTrades rows a block), small enough
# that a batch stays a few MiB; measured: 1-4 MiB blocks parse fastest.
DEFAULT_BLOCK_SIZE = 4 << 20

TimeUnit = Literal["ms", "us"]


class ArchiveKind(StrEnum):
    """A data.binance.vision dataset; the value is its name in archive paths."""

    AGG_TRADES = "aggTrades"
    TRADES = "trades"
    KLINES = "klines"


class _Role(Enum):
    INT = auto()  # int64 as written: ids, trade counts
    E8 = auto()  # decimal string -> int64 mantissa at exponent -8
    VOLUME = auto()  # decimal string -> decimal128(38, 8), kept wide (see arrow_schemas)
    TIME = auto()  # epoch ms or µs -> timestamp[us, UTC]
    BOOL = auto()  # True / False
    IGNORE = auto()  # parsed for the column count only, not converted or kept


# CSV columns in file order (SPEC §4), named after the output fields they become.
_LAYOUTS: dict[ArchiveKind, tuple[tuple[str, _Role], ...]] = {
    ArchiveKind.AGG_TRADES: (
        ("agg_trade_id", _Role.INT),
        ("price_e8", _Role.E8),
        ("qty_e8", _Role.E8),
        ("first_trade_id", _Role.INT),
        ("last_trade_id", _Role.INT),
        ("transact_time", _Role.TIME),
        ("is_buyer_maker", _Role.BOOL),
        ("is_best_match", _Role.BOOL),
    ),
    ArchiveKind.TRADES: (
        ("trade_id", _Role.INT),
        ("price_e8", _Role.E8),
        ("qty_e8", _Role.E8),
        ("quote_qty_e8", _Role.E8),
        ("transact_time", _Role.TIME),
        ("is_buyer_maker", _Role.BOOL),
        ("is_best_match", _Role.BOOL),
    ),
    ArchiveKind.KLINES: (
        ("open_time", _Role.TIME),
        ("open_e8", _Role.E8),
        ("high_e8", _Role.E8),
        ("low_e8", _Role.E8),
        ("close_e8", _Role.E8),
        ("volume", _Role.VOLUME),
        ("close_time", _Role.TIME),
        ("quote_volume", _Role.VOLUME),
        ("trade_count", _Role.INT),
        ("taker_buy_base_volume", _Role.VOLUME),
        ("taker_buy_quote_volume", _Role.VOLUME),
        ("ignore", _Role.IGNORE),
    ),
}

_SCHEMAS: dict[ArchiveKind, pa.Schema] = {
    ArchiveKind.AGG_TRADES: arrow_schemas.AGG_TRADES,
    ArchiveKind.TRADES: arrow_schemas.TRADES,
    ArchiveKind.KLINES: arrow_schemas.KLINES,
}

_DECIMAL_E8 = pa.decimal128(38, 8)
_UNSCALED = pa.decimal128(38, 0)
_READ_TYPES: dict[_Role, pa.DataType] = {
    _Role.INT: pa.int64(),
    _Role.E8: _DECIMAL_E8,
    _Role.VOLUME: _DECIMAL_E8,
    _Role.TIME: pa.int64(),
    _Role.BOOL: pa.bool_(),
    _Role.IGNORE: pa.string(),
}
_INT64_RANGE = (pa.scalar(INT64_MIN).cast(_UNSCALED), pa.scalar(INT64_MAX).cast(_UNSCALED))

_ARROW_COLUMN = re.compile(r"^In CSV column #(\d+): ")
_ARROW_ROW = re.compile(r"Row #(\d+)")


def schema_for(kind: ArchiveKind | str) -> pa.Schema:
    """The fixed-point Arrow schema that ``iter_batches`` produces for ``kind``."""
    return _SCHEMAS[ArchiveKind(kind)]


class ArchiveCsvReader:
    """Single-use iterator over one archive zip as RecordBatches of ``schema_for(kind)``.

    ``time_unit`` is the unit detected in the file, None until a non-empty batch was read;
    every timestamp column of every batch must agree with it, else ``MixedTimeUnits``.
    """

    def __init__(
        self,
        zip_path: str | Path,
        kind: ArchiveKind | str,
        *,
        block_size: int = DEFAULT_BLOCK_SIZE,
    ) -> None:
        self.path = Path(zip_path)
        self.kind = ArchiveKind(kind)
        self.schema = _SCHEMAS[self.kind]
        self.block_size = block_size
        self.time_unit: TimeUnit | None = None
        self.rows_read = 0
        self._layout = _LAYOUTS[self.kind]
        self._kept = [(name, role) for name, role in self._layout if role is not _Role.IGNORE]

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        try:
            with zipfile.ZipFile(self.path) as archive, archive.open(self._member(archive)) as f:
                yield from self._batches(f)
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise CorruptArchive(self.path, f"unreadable zip: {exc}") from exc
        except pa.ArrowInvalid as exc:
            raise self._arrow_error(exc) from exc
        logger.debug(
            "%s: %d %s rows, timestamps in %s",
            self.path.name,
            self.rows_read,
            self.kind,
            self.time_unit,
        )

    def _batches(self, member: zipfile.ZipExtFile) -> Iterator[pa.RecordBatch]:
        first = member.peek(1)[:1]
        if not first:
            return  # pyarrow rejects an empty stream; an empty archive simply has no rows
        # Spot files have no header; a futures-style one starts with a letter, and peeking the
        # already-buffered stream costs nothing. Anything else non-numeric is left to fail
        # conversion loudly rather than be skipped as a header.
        has_header = first.isalpha()
        if has_header:
            logger.debug("%s: skipping a header row", self.path.name)
        # open_csv reads its first block eagerly: its errors surface here, inside the caller's
        # try, like those of later blocks.
        with pacsv.open_csv(
            member,
            read_options=self._read_options(skip_rows=int(has_header)),
            convert_options=self._convert_options(),
        ) as reader:
            for raw in reader:
                batch = self._convert(raw, first_row=self.rows_read + 1)
                self.rows_read += raw.num_rows
                yield batch

    def _member(self, archive: zipfile.ZipFile) -> zipfile.ZipInfo:
        members = [info for info in archive.infolist() if not info.is_dir()]
        if len(members) != 1:
            names = [info.filename for info in members]
            raise ArchiveParseError(self.path, f"expected exactly one CSV member, found {names}")
        return members[0]

    def _read_options(self, skip_rows: int) -> pacsv.ReadOptions:
        # Serial parsing measured faster here (zip inflation in Python dominates) and keeps
        # every read of the zip stream on the consumer's thread.
        return pacsv.ReadOptions(
            column_names=[name for name, _ in self._layout],
            skip_rows=skip_rows,
            block_size=self.block_size,
            use_threads=False,
        )

    def _convert_options(self) -> pacsv.ConvertOptions:
        # No null spellings: an empty field is garbage in these files, not a missing value.
        return pacsv.ConvertOptions(
            column_types={name: _READ_TYPES[role] for name, role in self._layout},
            include_columns=[name for name, _ in self._kept],
            null_values=[],
            true_values=["True", "true"],
            false_values=["False", "false"],
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        )

    def _convert(self, raw: pa.RecordBatch, first_row: int) -> pa.RecordBatch:
        arrays = []
        for (name, role), column in zip(self._kept, raw.columns, strict=True):
            if role is _Role.E8:
                column = self._e8_mantissas(name, column, first_row)
            elif role is _Role.TIME:
                column = self._timestamps_us(name, column, first_row)
            arrays.append(column)
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def _e8_mantissas(self, name: str, column: pa.Array, first_row: int) -> pa.Array:
        # decimal128(38, 8) stores the value times 1e8 as an integer; reading the same bits at
        # scale 0 is that e8 mantissa, and a safe cast to int64 rejects what does not fit.
        unscaled = column.view(_UNSCALED)
        try:
            return unscaled.cast(pa.int64())
        except pa.ArrowInvalid:
            low, high = _INT64_RANGE
            outside = pc.or_(pc.less(unscaled, low), pc.greater(unscaled, high))
            index = pc.index(outside, True).as_py()
            raise ArchiveParseError(
                self.path,
                f"{column[index].as_py()} does not fit an int64 e8 mantissa",
                column=name,
                row=first_row + index,
            ) from None

    def _timestamps_us(self, name: str, column: pa.Array, first_row: int) -> pa.Array:
        low, high = (value.as_py() for value in pc.min_max(column).values())
        if low is None:
            return column.cast(arrow_schemas.TIMESTAMP_US)
        if low >= US_THRESHOLD:
            unit: TimeUnit = "us"
        elif high < US_THRESHOLD:
            unit = "ms"
        else:
            first_is_us = column[0].as_py() >= US_THRESHOLD
            index = pc.index(pc.greater_equal(column, US_THRESHOLD), not first_is_us).as_py()
            raise MixedTimeUnits(
                self.path,
                f"timestamps mix ms and µs ({column[0].as_py()} then {column[index].as_py()})",
                column=name,
                row=first_row + index,
            )
        if self.time_unit is None:
            self.time_unit = unit
        elif unit != self.time_unit:
            raise MixedTimeUnits(
                self.path,
                f"{unit} timestamps in a file that started in {self.time_unit}",
                column=name,
                row=first_row,
            )
        if unit == "ms":
            column = pc.multiply_checked(column, 1000)
        return column.cast(arrow_schemas.TIMESTAMP_US)

    def _arrow_error(self, exc: pa.ArrowInvalid) -> ArchiveParseError:
        message = str(exc).strip()
        column = None
        match = _ARROW_COLUMN.match(message)
        if match:
            column = self._layout[int(match[1])][0]
            message = message[match.end() :]
        if "Rescaling Decimal" in message:
            message = "a value has more than 8 decimal places, so it is not exact at e8"
        row_match = _ARROW_ROW.search(message)
        row = int(row_match[1]) if row_match else None
        if row is None:
            # pyarrow names the column but not the row; the failing block starts after the
            # rows already delivered.
            message += f" (in the block after data row {self.rows_read})"
        return ArchiveParseError(self.path, message, column=column, row=row)


def iter_batches(
    zip_path: str | Path,
    kind: ArchiveKind | str,
    *,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> Iterator[pa.RecordBatch]:
    """Stream one archive zip as RecordBatches of ``schema_for(kind)``, one per CSV block."""
    return iter(ArchiveCsvReader(zip_path, kind, block_size=block_size))


def read_table(
    zip_path: str | Path,
    kind: ArchiveKind | str,
    *,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> pa.Table:
    """Read a whole archive zip into one Table of ``schema_for(kind)`` (empty file: 0 rows)."""
    batches = list(iter_batches(zip_path, kind, block_size=block_size))
    return pa.Table.from_batches(batches, schema=schema_for(kind))
