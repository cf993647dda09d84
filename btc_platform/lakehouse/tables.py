"""The lakehouse's Iceberg tables: their schemas and partitioning, and idempotent window writes.

Every write replaces exactly one symbol's time window ``[start, end)`` of a table in one
Iceberg snapshot (``Table.overwrite`` with a row filter on the partition's time column and
the symbol), so a re-run or a backfill never duplicates a row, a reader sees the old window
or the new one, and one symbol's write never deletes another symbol's rows. Windows of
writers align with the table's partitioning, so the delete drops whole files when the
window holds one symbol.

Every row carries the seeds' envelope: ``source``, ``ingest_ts`` and ``version``.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError, TableAlreadyExistsError
from pyiceberg.expressions import And, BooleanExpression, EqualTo, GreaterThanOrEqual, LessThan
from pyiceberg.io.pyarrow import pyarrow_to_schema
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.table import Table
from pyiceberg.table.name_mapping import MappedField, NameMapping
from pyiceberg.transforms import DayTransform, HourTransform, Transform

from realtime.features.contract import CONTRACT_V1
from realtime.market.arrow_schemas import AGG_TRADES, TIMESTAMP_US

RECORD_VERSION = 1
"""The ``version`` of the rows this code writes (the seeds' record envelope)."""

NOTIONAL_E16 = pa.decimal128(38, 0)
"""``sum(price_e8 * qty_e8)`` per second passes int64; decimal(38, 0) holds it exactly."""

_ENVELOPE = [
    pa.field("source", pa.string(), nullable=False),
    pa.field("ingest_ts", TIMESTAMP_US, nullable=False),
    pa.field("version", pa.int32(), nullable=False),
]
SYMBOL_COLUMN = "symbol"
"""Every lake table holds several symbols' rows side by side; each row names its symbol."""
_SYMBOL = pa.field(SYMBOL_COLUMN, pa.string(), nullable=False)
_SECOND = [
    _SYMBOL,
    pa.field("ts", TIMESTAMP_US, nullable=False),
    pa.field("ts_sec", pa.int64(), nullable=False),
]
_FEATURES_V1 = [pa.field(name, pa.float64()) for name in CONTRACT_V1.names]


@dataclass(frozen=True)
class TableSpec:
    """One lakehouse table: where it lives, its columns, and the column that places a row in
    time (``time_column``, also the partition source)."""

    namespace: str
    name: str
    schema: pa.Schema
    time_column: str
    partition: Transform | None
    """None: unpartitioned (small tables)."""
    description: str

    def __post_init__(self) -> None:
        # A window write deletes by symbol too; a table without the column could not be
        # written without deleting every symbol's rows of the window.
        if SYMBOL_COLUMN not in self.schema.names:
            raise ValueError(f"{self.namespace}.{self.name} has no {SYMBOL_COLUMN!r} column")

    @property
    def identifier(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @property
    def qualified_name(self) -> str:
        return f"{self.namespace}.{self.name}"


BRONZE_AGG_TRADES = TableSpec(
    "bronze",
    "agg_trades",
    pa.schema([_SYMBOL, *AGG_TRADES, *_ENVELOPE]),
    "transact_time",
    HourTransform(),
    "Binance aggregate trades as fetched (archive files or REST), one row per trade and fetch.",
)
SILVER_TRADES = TableSpec(
    "silver",
    "trades",
    pa.schema(
        [_SYMBOL, *AGG_TRADES, *_ENVELOPE, pa.field("n_sources", pa.int32(), nullable=False)]
    ),
    "transact_time",
    HourTransform(),
    "Aggregate trades deduplicated across sources: one row per agg_trade_id.",
)
SILVER_BARS_1S = TableSpec(
    "silver",
    "bars_1s",
    pa.schema(
        [
            *_SECOND,
            pa.field("n_trades", pa.int64(), nullable=False),
            pa.field("buy_qty_e8", pa.int64(), nullable=False),
            pa.field("sell_qty_e8", pa.int64(), nullable=False),
            pa.field("notional_e16", NOTIONAL_E16, nullable=False),
            pa.field("first_price_e8", pa.int64()),
            pa.field("last_price_e8", pa.int64()),
            pa.field("max_qty_e8", pa.int64(), nullable=False),
            pa.field("last_trade_time", TIMESTAMP_US),
            pa.field("first_trade_id", pa.int64()),
            pa.field("last_trade_id", pa.int64()),
            pa.field("bid_price_e8", pa.int64()),
            pa.field("ask_price_e8", pa.int64()),
            pa.field("bid_qty_e8", pa.int64()),
            pa.field("ask_qty_e8", pa.int64()),
            *_ENVELOPE,
        ]
    ),
    "ts",
    DayTransform(),
    "One row per second: the exact integer aggregates the feature contract is computed from.",
)
SILVER_FEATURES_1S = TableSpec(
    "silver",
    "features_1s",
    pa.schema(
        [
            *_SECOND,
            pa.field("contract_version", pa.int32(), nullable=False),
            *_FEATURES_V1,
            pa.field("log_price", pa.float64()),
            *_ENVELOPE,
        ]
    ),
    "ts",
    DayTransform(),
    "One feature vector per second, by the feature contract's engine (NaN = undefined), and "
    "the log of the carried last price that labels are computed from.",
)
GOLD_TRAINING_1S = TableSpec(
    "gold",
    "training_1s",
    pa.schema(
        [
            *_SECOND,
            pa.field("contract_version", pa.int32(), nullable=False),
            *_FEATURES_V1,
            pa.field("y_log_return_10s", pa.float64(), nullable=False),
            *_ENVELOPE,
        ]
    ),
    "ts",
    DayTransform(),
    "Training rows: features at t and the 10-second-ahead log return, where both are defined "
    "and the label reads no second past the last complete one.",
)

MODEL_REGISTRY = TableSpec(
    "ml",
    "model_registry",
    pa.schema(
        [
            _SYMBOL,
            pa.field("model_version", pa.string(), nullable=False),
            pa.field("created_at", TIMESTAMP_US, nullable=False),
            pa.field("stage", pa.string(), nullable=False),
            pa.field("promotable", pa.bool_(), nullable=False),
            pa.field("gate_reasons", pa.string(), nullable=False),
            pa.field("contract_version", pa.int32(), nullable=False),
            pa.field("onnx_sha256", pa.string(), nullable=False),
            pa.field("bundle_uri", pa.string(), nullable=False),
            pa.field("train_start", TIMESTAMP_US, nullable=False),
            pa.field("test_end", TIMESTAMP_US, nullable=False),
            pa.field("test_mae", pa.float64(), nullable=False),
            pa.field("test_hit_rate", pa.float64()),
            pa.field("zero_mae", pa.float64(), nullable=False),
            pa.field("metrics", pa.string(), nullable=False),
            pa.field("lineage", pa.string(), nullable=False),
            *_ENVELOPE,
        ]
    ),
    "created_at",
    None,
    "One row per model version: its gate verdict, metrics, lineage and serving stage.",
)

TABLES = (
    BRONZE_AGG_TRADES,
    SILVER_TRADES,
    SILVER_BARS_1S,
    SILVER_FEATURES_1S,
    GOLD_TRAINING_1S,
    MODEL_REGISTRY,
)


@dataclass(frozen=True)
class WindowWrite:
    """What one window write did."""

    rows: int
    snapshot_id: int | None


def ensure_table(catalog: Catalog, spec: TableSpec) -> Table:
    """The table of ``spec``, created (with its partitioning) if it does not exist."""
    try:
        return catalog.load_table(spec.identifier)
    except NoSuchTableError:
        pass
    schema = pyarrow_to_schema(spec.schema, name_mapping=name_mapping(spec.schema))
    partition = PartitionSpec()
    if spec.partition is not None:
        source = schema.find_field(spec.time_column)
        partition = PartitionSpec(
            PartitionField(
                source_id=source.field_id,
                field_id=1000,
                transform=spec.partition,
                name=f"{spec.time_column}_{spec.partition}",
            )
        )
    catalog.create_namespace_if_not_exists(spec.namespace)
    try:
        return catalog.create_table(spec.identifier, schema=schema, partition_spec=partition)
    except TableAlreadyExistsError:  # another run created it meanwhile
        return catalog.load_table(spec.identifier)


def overwrite_window(
    catalog: Catalog, spec: TableSpec, rows: pa.Table, start_us: int, end_us: int, *, symbol: str
) -> WindowWrite:
    """Replace ``symbol``'s rows of ``[start_us, end_us)`` (by ``spec.time_column``) with ``rows``.

    ``rows`` must all be of ``symbol`` and fall inside the window: a writer never touches data
    it does not own (other symbols' rows of the window stay). Columns are cast to the table's
    schema, so a wrong type fails here, before any commit.
    """
    if start_us >= end_us:
        raise ValueError(f"empty window [{start_us}, {end_us})")
    if not symbol:
        raise ValueError("a window write needs the symbol it replaces")
    data = rows.select(spec.schema.names).cast(spec.schema)
    if data.num_rows:
        times = pc.cast(data[spec.time_column], pa.int64())
        low, high = pc.min(times).as_py(), pc.max(times).as_py()
        if low < start_us or high >= end_us:
            raise ValueError(
                f"{spec.qualified_name}: rows from {low} to {high} fall outside the window "
                f"[{start_us}, {end_us})"
            )
        others = pc.unique(data[SYMBOL_COLUMN]).to_pylist()
        if others != [symbol]:
            raise ValueError(
                f"{spec.qualified_name}: a write of {symbol}'s window holds rows of "
                f"{sorted(others)}"
            )
    table = ensure_table(catalog, spec)
    with warnings.catch_warnings():
        # The first write of a window deletes nothing, and pyiceberg says so; that is expected.
        warnings.filterwarnings("ignore", "Delete operation did not match any records")
        table.overwrite(data, overwrite_filter=window_filter(spec, start_us, end_us, symbol))
    snapshot = table.current_snapshot()
    return WindowWrite(data.num_rows, snapshot.snapshot_id if snapshot else None)


def replace_rows(
    catalog: Catalog, spec: TableSpec, rows: pa.Table, where: BooleanExpression
) -> WindowWrite:
    """Replace the rows matching ``where`` with ``rows`` in one snapshot (an upsert by key)."""
    data = rows.select(spec.schema.names).cast(spec.schema)
    table = ensure_table(catalog, spec)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Delete operation did not match any records")
        table.overwrite(data, overwrite_filter=where)
    snapshot = table.current_snapshot()
    return WindowWrite(data.num_rows, snapshot.snapshot_id if snapshot else None)


def scan_where(catalog: Catalog, spec: TableSpec, where: BooleanExpression) -> pa.Table:
    """The rows matching ``where`` (empty, with the schema, if no table yet)."""
    try:
        table = catalog.load_table(spec.identifier)
    except NoSuchTableError:
        return spec.schema.empty_table()
    return table.scan(row_filter=where).to_arrow().select(spec.schema.names).cast(spec.schema)


def scan_window(
    catalog: Catalog,
    spec: TableSpec,
    start_us: int,
    end_us: int,
    columns: tuple[str, ...] | None = None,
    *,
    symbol: str | None = None,
) -> pa.Table:
    """The rows of ``[start_us, end_us)``, with the table's schema (empty if no table yet).

    ``symbol``: only that symbol's rows; None: every symbol's.
    """
    try:
        table = catalog.load_table(spec.identifier)
    except NoSuchTableError:
        empty = spec.schema.empty_table()
        return empty.select(list(columns)) if columns else empty
    scan = table.scan(
        row_filter=window_filter(spec, start_us, end_us, symbol),
        selected_fields=columns or ("*",),
    )
    data = scan.to_arrow()
    schema = spec.schema if columns is None else pa.schema([spec.schema.field(c) for c in columns])
    return data.select(schema.names).cast(schema)


def window_filter(
    spec: TableSpec, start_us: int, end_us: int, symbol: str | None = None
) -> BooleanExpression:
    """Rows of ``[start_us, end_us)`` by ``spec.time_column``, of ``symbol`` unless None."""
    window = And(GreaterThanOrEqual(spec.time_column, start_us), LessThan(spec.time_column, end_us))
    return window if symbol is None else And(window, EqualTo(SYMBOL_COLUMN, symbol))


def current_snapshot_id(catalog: Catalog, spec: TableSpec) -> int | None:
    try:
        snapshot = catalog.load_table(spec.identifier).current_snapshot()
    except NoSuchTableError:
        return None
    return snapshot.snapshot_id if snapshot else None


def name_mapping(schema: pa.Schema) -> NameMapping:
    """Field ids for an Arrow schema without any: positions at the top (1..n), then the
    nested fields (struct members, list elements) after them."""
    next_id = itertools.count(len(schema) + 1)

    def children(arrow_type: pa.DataType) -> list[MappedField]:
        if pa.types.is_struct(arrow_type):
            return [
                MappedField(field_id=next(next_id), names=[f.name], fields=children(f.type))
                for f in arrow_type
            ]
        if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
            element = arrow_type.value_type
            return [
                MappedField(field_id=next(next_id), names=["element"], fields=children(element))
            ]
        return []

    return NameMapping(
        [
            MappedField(field_id=i + 1, names=[f.name], fields=children(f.type))
            for i, f in enumerate(schema)
        ]
    )
