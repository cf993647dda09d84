"""The expectation suite of each lakehouse table: its declared schema and its domain rules.

The schema part comes from the table's ``TableSpec`` (``btc_platform.lakehouse.tables``):
the columns as a set, each column's type as ``frames.validation_frame`` shows a correct
column (``int64[pyarrow]``, ``float64``, ``str``, ``datetime64[us, UTC]``, ...), and NOT
NULL where the field is not nullable. The domain part is written here: keys, ranges,
conditional nulls, plausibility. Each domain rule carries a ``description`` in the
domain's words, so a failed check reads as the broken rule, not as a GX class name.

Every factory builds a new suite: a suite is a mutable object a context may take over.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime

import great_expectations as gx
import great_expectations.expectations as gxe
import pyarrow as pa
from great_expectations.expectations.row_conditions import Column

from btc_platform.lakehouse import tables
from btc_platform.lakehouse.tables import TableSpec
from btc_platform.quality.frames import validation_frame
from realtime.features.contract import CONTRACT_V1

PRICE_E8_MIN = 10**8
"""1 USDT: below it a price is a unit error (e.g. a mantissa at the wrong exponent)."""
PRICE_E8_MAX = 10**15
"""10,000,000 USDT."""
LOG_PRICE_MIN = 0.0
"""log(1 USDT), the same band as the e8 prices."""
LOG_PRICE_MAX = 16.2
"""Just above log(10,000,000 USDT) = 16.12."""
FIRST_TRADE_TIME = datetime(2017, 7, 14, tzinfo=UTC)
"""BTCUSDT opened on Binance on 2017-07-14; earlier times are a unit mix-up (a ms epoch
read as µs lands in 1970)."""
LAST_PLAUSIBLE_TIME = datetime(2100, 1, 1, tzinfo=UTC)
"""A µs epoch read as ms lands tens of thousands of years ahead; the limit is far off, not
"now", so a suite's verdict never depends on when it runs."""
TRADE_SOURCES = ("archive", "rest", "live")
MAX_SOURCES = len(TRADE_SOURCES)
CONTRACT_VERSIONS = (1, 2)
MAX_ABS_RETURN = 0.2
"""A 20 % move of BTCUSDT within 10 s has never happened; such a return is a data error."""
MIN_DEFINED_SHARE = 0.99
"""Share of a day's rows on which each windowed model input of ``silver.features_1s`` must
be defined.

The lake's feature stream restarts at every UTC midnight, so a day has at most 59 warm-up
rows (0.07 % of 86,400); BTCUSDT trades in nearly every second, so the windows that need a
trade (``vwap_5s_dev``) are rarely undefined otherwise. 1 % is 14 minutes: only an outage,
a hole in the bars or a broken feature step reaches it.
"""

BY_TRADES = ("first_price_e8", "last_price_e8", "first_trade_id", "last_trade_id")
"""Bar columns that exist exactly when the second has trades (also ``last_trade_time``)."""
BOOK_TOP = ("bid_price_e8", "ask_price_e8", "bid_qty_e8", "ask_qty_e8")
"""The last best bid/ask of the second; null in trade-only history."""
LABEL = CONTRACT_V1.label
NEVER_NULL_FEATURES = tuple(
    feature["name"]
    for feature in CONTRACT_V1.document["features"]
    if feature["null_when"] == "never"
)
"""Per-second features the contract defines on every second, warm-up included."""
WINDOWED_INPUTS = tuple(
    name for name in CONTRACT_V1.model_inputs if name not in NEVER_NULL_FEATURES
)
"""Model inputs that are undefined during warm-up or before the first trade."""


def trades_suite() -> gx.ExpectationSuite:
    """``silver.trades``: one aggregate trade per row, deduplicated across sources."""
    return _suite(
        tables.SILVER_TRADES,
        [
            *_one_symbol(),
            _unique_key("agg_trade_id"),
            *_prices("price_e8"),
            gxe.ExpectColumnValuesToBeBetween(
                column="qty_e8", min_value=0, strict_min=True, description="a trade has size"
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="first_trade_id", min_value=0, description="Binance trade ids are >= 0"
            ),
            _ordered_ids("first_trade_id", "last_trade_id"),
            _plausible_time("transact_time"),
            gxe.ExpectColumnValuesToBeInSet(
                column="source",
                value_set=list(TRADE_SOURCES),
                description="a trade comes from an archive file, the REST API or the live stream",
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="n_sources",
                min_value=1,
                max_value=MAX_SOURCES,
                description="a deduplicated trade was seen by one to three sources",
            ),
        ],
    )


def bars_suite() -> gx.ExpectationSuite:
    """``silver.bars_1s``: exact integer aggregates of one second, empty seconds included."""
    traded = Column("n_trades") > 0
    empty = Column("n_trades") == 0
    # "Null exactly when the second is empty" is two expectations on complementary row
    # conditions: GX has no conditional-null expectation, and UnexpectedRowsExpectation
    # (a SQL query) runs on SQL and Spark data sources only.
    conditional_nulls = [
        rule
        for name in (*BY_TRADES, "last_trade_time")
        for rule in (
            gxe.ExpectColumnValuesToNotBeNull(
                column=name, row_condition=traded, description="a second with trades has it"
            ),
            gxe.ExpectColumnValuesToBeNull(
                column=name, row_condition=empty, description="a second without trades has none"
            ),
        )
    ]
    return _suite(
        tables.SILVER_BARS_1S,
        [
            *_one_symbol(),
            _unique_key("ts_sec"),
            *(
                gxe.ExpectColumnValuesToBeBetween(column=name, min_value=0)
                for name in ("n_trades", "buy_qty_e8", "sell_qty_e8", "notional_e16", "max_qty_e8")
            ),
            *conditional_nulls,
            *(
                gxe.ExpectColumnValuesToBeInSet(
                    column=name,
                    value_set=[0],
                    row_condition=empty,
                    description="a second without trades has no volume",
                )
                for name in ("buy_qty_e8", "sell_qty_e8", "notional_e16", "max_qty_e8")
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="max_qty_e8",
                min_value=0,
                strict_min=True,
                row_condition=traded,
                description="a second with trades has a largest trade with size",
            ),
            *_prices("first_price_e8", "last_price_e8", "bid_price_e8", "ask_price_e8"),
            _ordered_ids("first_trade_id", "last_trade_id"),
            _plausible_time("last_trade_time"),
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="ask_price_e8",
                column_B="bid_price_e8",
                ignore_row_if="either_value_is_missing",
                description="the book is not crossed: best ask above best bid",
            ),
            gxe.ExpectColumnValuesToBeNull(
                column="ask_price_e8",
                row_condition=Column("bid_price_e8").is_null(),
                description="a best bid/ask event carries both sides",
            ),
            *(
                gxe.ExpectColumnValuesToBeBetween(
                    column=name, min_value=0, strict_min=True, description="a quote has size"
                )
                for name in ("bid_qty_e8", "ask_qty_e8")
            ),
        ],
    )


def features_suite() -> gx.ExpectationSuite:
    """``silver.features_1s``: contract-v1 vectors, NaN only where the contract allows."""
    return _suite(
        tables.SILVER_FEATURES_1S,
        [
            *_one_symbol(),
            _unique_key("ts_sec"),
            _contract_version(),
            *(
                gxe.ExpectColumnValuesToNotBeNull(
                    column=name, description="the contract defines it on every second"
                )
                for name in NEVER_NULL_FEATURES
            ),
            *(
                gxe.ExpectColumnValuesToNotBeNull(
                    column=name,
                    mostly=MIN_DEFINED_SHARE,
                    # Of the seconds with trades in their last five: before a history's first
                    # trade, or after its last (the running day), windows are rightly empty.
                    row_condition=Column("n_trades_5s") > 0,
                    description="defined beyond warm-up where trades are (MIN_DEFINED_SHARE)",
                )
                for name in WINDOWED_INPUTS
            ),
            *_feature_ranges(),
            gxe.ExpectColumnValuesToBeBetween(
                column="log_price",
                min_value=LOG_PRICE_MIN,
                max_value=LOG_PRICE_MAX,
                description="log of a plausible price (1 to 10M USDT)",
            ),
        ],
    )


def training_suite() -> gx.ExpectationSuite:
    """``gold.training_1s``: rows a model trains on, so every input and the label exist."""
    return _suite(
        tables.GOLD_TRAINING_1S,
        [
            *_one_symbol(),
            _unique_key("ts_sec"),
            _contract_version(),
            *(
                gxe.ExpectColumnValuesToNotBeNull(
                    column=name, description="a training row has every model input"
                )
                for name in CONTRACT_V1.model_inputs
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column=LABEL,
                min_value=-MAX_ABS_RETURN,
                max_value=MAX_ABS_RETURN,
                strict_min=True,
                strict_max=True,
                description="|10 s log return| < 0.2: a larger move is a data error",
            ),
            *_feature_ranges(),
        ],
    )


SUITES: dict[str, Callable[[], gx.ExpectationSuite]] = {
    tables.SILVER_TRADES.qualified_name: trades_suite,
    tables.SILVER_BARS_1S.qualified_name: bars_suite,
    tables.SILVER_FEATURES_1S.qualified_name: features_suite,
    tables.GOLD_TRAINING_1S.qualified_name: training_suite,
}
"""Suite factory per lake table name (``namespace.table``)."""


def _suite(spec: TableSpec, rules: Iterable[gxe.Expectation]) -> gx.ExpectationSuite:
    return gx.ExpectationSuite(
        name=spec.qualified_name, expectations=[*_declared_schema(spec.schema), *rules]
    )


def _declared_schema(schema: pa.Schema) -> list[gxe.Expectation]:
    """The table's columns as a set, each column's type, and its NOT NULLs."""
    # The dtypes a correct batch has are those of the declared schema's empty table.
    dtypes = validation_frame(schema.empty_table()).dtypes
    rules: list[gxe.Expectation] = [
        gxe.ExpectTableColumnsToMatchSet(
            column_set=list(schema.names), description="the table's declared columns"
        )
    ]
    for field in schema:
        # GX resolves a type name with pandas_dtype, which cannot parse a parameterised
        # Arrow type such as "decimal128(38, 0)[pyarrow]"; the writer casts to the
        # declared schema, and the values of a decimal column are checked by their rules.
        if not pa.types.is_decimal(field.type):
            rules.append(
                gxe.ExpectColumnTypeToBe(
                    column=field.name,
                    type_=str(dtypes[field.name]),
                    description=f"declared {field.type}",
                )
            )
        if not field.nullable:
            rules.append(
                gxe.ExpectColumnValuesToNotBeNull(
                    column=field.name, description="declared NOT NULL"
                )
            )
    return rules


def _one_symbol() -> list[gxe.Expectation]:
    return [
        # At most one: whether a window may be empty is for the completeness checks.
        gxe.ExpectColumnUniqueValueCountToBeBetween(
            column="symbol", max_value=1, description="a table partition holds one symbol"
        ),
        gxe.ExpectColumnValuesToMatchRegex(
            column="symbol", regex=r"^[A-Z0-9]+$", description="an upper-case Binance symbol"
        ),
    ]


def _unique_key(column: str) -> gxe.Expectation:
    return gxe.ExpectColumnValuesToBeUnique(column=column, description="the table's key")


def _prices(*columns: str) -> list[gxe.Expectation]:
    return [
        gxe.ExpectColumnValuesToBeBetween(
            column=name,
            min_value=PRICE_E8_MIN,
            max_value=PRICE_E8_MAX,
            description="a plausible BTCUSDT price: 1 to 10M USDT at e8",
        )
        for name in columns
    ]


def _ordered_ids(first: str, last: str) -> gxe.Expectation:
    return gxe.ExpectColumnPairValuesAToBeGreaterThanB(
        column_A=last,
        column_B=first,
        or_equal=True,
        ignore_row_if="either_value_is_missing",
        description="ids grow with time: the first trade id is at most the last",
    )


def _plausible_time(column: str) -> gxe.Expectation:
    return gxe.ExpectColumnValuesToBeBetween(
        column=column,
        min_value=FIRST_TRADE_TIME,
        max_value=LAST_PLAUSIBLE_TIME,
        description="µs since the epoch within BTCUSDT's life (a ms/µs mix-up lands outside)",
    )


def _contract_version() -> gxe.Expectation:
    return gxe.ExpectColumnValuesToBeInSet(
        column="contract_version",
        value_set=list(CONTRACT_VERSIONS),
        description="a published feature contract version",
    )


def _feature_ranges() -> list[gxe.Expectation]:
    """Bounds that hold wherever a feature is defined (NaN rows are skipped)."""
    non_negative = (
        "n_trades_1s",
        "n_trades_5s",
        "buy_vol_1s",
        "sell_vol_1s",
        "buy_vol_5s",
        "sell_vol_5s",
        "avg_trade_size_1s",
        "vol_ret_10s",
        "time_since_last_trade_ms",
    )
    return [
        *(gxe.ExpectColumnValuesToBeBetween(column=name, min_value=0) for name in non_negative),
        *(
            gxe.ExpectColumnValuesToBeBetween(
                column=name, min_value=-1, max_value=1, description="an imbalance lies in [-1, 1]"
            )
            for name in ("tvi_1s", "tvi_5s")
        ),
        *(
            gxe.ExpectColumnValuesToBeInSet(
                column=name, value_set=[0.0, 1.0], description="a flag is 0 or 1"
            )
            for name in ("burst_1s", "large_trade_flag_5s")
        ),
        *(
            gxe.ExpectColumnValuesToBeBetween(
                column=name,
                min_value=-MAX_ABS_RETURN,
                max_value=MAX_ABS_RETURN,
                strict_min=True,
                strict_max=True,
                description="|log return| < 0.2 within seconds: a larger move is a data error",
            )
            for name in ("ret_1s", "ret_2s", "ret_5s")
        ),
        *(
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A=f"{stem}_5s",
                column_B=f"{stem}_1s",
                or_equal=True,
                ignore_row_if="either_value_is_missing",
                description="a 5 s window contains its last second",
            )
            for stem in ("n_trades", "buy_vol", "sell_vol")
        ),
    ]
