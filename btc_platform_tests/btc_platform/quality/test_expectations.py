"""Each table's suite passes realistic rows and names the rule and column a corruption breaks.

Valid tables come from the project's own pipeline over a synthetic market (see
``support/lake_tables.py``). A validation costs 0.1–0.5 s of GX bookkeeping whatever the
row count, so each table's corruptions go into one copy of it, each in its own cell, and
that copy is validated once: every corruption must break its own rule, and nothing else
may break.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import pyarrow as pa
import pytest

pytest.importorskip("great_expectations", reason="the batch extra is not installed")

from btc_platform.lakehouse import tables
from btc_platform.quality.expectations import (
    SUITES,
    QualityReport,
    UnknownTable,
    validate_table,
)
from btc_platform_tests.support.lake_tables import MarketTables
from realtime.features.contract import CONTRACT_V1

LABEL = CONTRACT_V1.label
TICK_E8 = 1_000_000
PRICE_E8 = 98_000 * 10**8
BETWEEN = "expect_column_values_to_be_between"
IN_SET = "expect_column_values_to_be_in_set"
NOT_NULL = "expect_column_values_to_not_be_null"
IS_NULL = "expect_column_values_to_be_null"
UNIQUE = "expect_column_values_to_be_unique"
ORDERED_PAIR = "expect_column_pair_values_a_to_be_greater_than_b"
COLUMN_SET = "expect_table_columns_to_match_set"

Cell = tuple[str, int]
"""(column, row)"""

BROKEN_RULES: dict[str, dict[str, tuple[str, str]]] = {
    "silver.trades": {
        "duplicate trade id": (UNIQUE, "agg_trade_id"),
        "null trade id": (NOT_NULL, "agg_trade_id"),
        "negative quantity": (BETWEEN, "qty_e8"),
        "unknown source": (IN_SET, "source"),
        "price without its e8 scale": (BETWEEN, "price_e8"),
        "ms time read as µs (1970)": (BETWEEN, "transact_time"),
        "first trade id after last": (ORDERED_PAIR, "last_trade_id,first_trade_id"),
        "four sources": (BETWEEN, "n_sources"),
        "second symbol": ("expect_column_unique_value_count_to_be_between", "symbol"),
    },
    "silver.bars_1s": {
        "no price in a traded second": (NOT_NULL, "first_price_e8"),
        "a price in an empty second": (IS_NULL, "last_price_e8"),
        "volume in an empty second": (IN_SET, "buy_qty_e8"),
        "crossed book": (ORDERED_PAIR, "ask_price_e8,bid_price_e8"),
        "duplicate second": (UNIQUE, "ts_sec"),
        "negative notional (decimal)": (BETWEEN, "notional_e16"),
    },
    "silver.features_1s": {
        "imbalance above one": (BETWEEN, "tvi_1s"),
        "flag of two": (IN_SET, "burst_1s"),
        "30 % one-second return": (BETWEEN, "ret_1s"),
        "2 % undefined returns": (NOT_NULL, "ret_1s"),
        "undefined trade count": (NOT_NULL, "n_trades_1s"),
        "unknown contract version": (IN_SET, "contract_version"),
    },
    "gold.training_1s": {
        "undefined label": (NOT_NULL, LABEL),
        "25 % ten-second move": (BETWEEN, LABEL),
        "undefined model input": (NOT_NULL, "vwap_5s_dev"),
    },
}
"""What each corruption below must break: (expectation type, column)."""


def trade_corruptions(trades: pa.Table) -> dict[str, dict[Cell, object]]:
    return {
        "duplicate trade id": {("agg_trade_id", 5): trades["agg_trade_id"][4].as_py()},
        "null trade id": {("agg_trade_id", 3): None},
        "negative quantity": {("qty_e8", 7): -100_000},
        "unknown source": {("source", 0): "kafka"},
        "price without its e8 scale": {("price_e8", 9): 98_000},
        "ms time read as µs (1970)": {
            ("transact_time", 2): pa.scalar(1_767_225_600_000, pa.timestamp("us", tz="UTC"))
        },
        "first trade id after last": {
            ("first_trade_id", 11): trades["last_trade_id"][11].as_py() + 1
        },
        "four sources": {("n_sources", 1): 4},
        "second symbol": {("symbol", 12): "ETHUSDT"},
    }


def bar_corruptions(bars: pa.Table) -> dict[str, dict[Cell, object]]:
    pick = RowPicker(bars)
    traded = pick.first(lambda bar: bar["n_trades"] > 0)
    empty = pick.first(lambda bar: bar["n_trades"] == 0)
    quoted = pick.first(lambda bar: bar["bid_price_e8"] is not None)
    last = bars.num_rows - 1
    return {
        "no price in a traded second": {("first_price_e8", traded): None},
        "a price in an empty second": {("last_price_e8", empty): PRICE_E8},
        "volume in an empty second": {
            ("buy_qty_e8", pick.first(lambda bar: bar["n_trades"] == 0)): 100_000
        },
        "crossed book": {("ask_price_e8", quoted): bars["bid_price_e8"][quoted].as_py() - TICK_E8},
        "duplicate second": {("ts_sec", last): bars["ts_sec"][last - 1].as_py()},
        "negative notional (decimal)": {
            ("notional_e16", pick.first(lambda bar: bar["n_trades"] > 0)): -1
        },
    }


def feature_corruptions(features: pa.Table) -> dict[str, dict[Cell, object]]:
    return {
        "imbalance above one": {("tvi_1s", 100): 1.5},
        "flag of two": {("burst_1s", 101): 2.0},
        "30 % one-second return": {("ret_1s", 102): 0.3},
        "2 % undefined returns": {
            ("ret_1s", row): math.nan for row in range(0, features.num_rows, 50)
        },
        "undefined trade count": {("n_trades_1s", 5): math.nan},
        "unknown contract version": {("contract_version", 0): 3},
    }


def training_corruptions(training: pa.Table) -> dict[str, dict[Cell, object]]:
    return {
        "undefined label": {(LABEL, 3): math.nan},
        "25 % ten-second move": {(LABEL, 4): -0.25},
        "undefined model input": {("vwap_5s_dev", 3): math.nan},
    }


CORRUPTIONS: dict[str, Callable[[pa.Table], dict[str, dict[Cell, object]]]] = {
    "silver.trades": trade_corruptions,
    "silver.bars_1s": bar_corruptions,
    "silver.features_1s": feature_corruptions,
    "gold.training_1s": training_corruptions,
}


class RowPicker:
    """Hands out rows that match a condition, never the same row twice."""

    def __init__(self, table: pa.Table) -> None:
        self._rows = table.to_pylist()
        self._taken: set[int] = set()

    def first(self, predicate: Callable[[dict], bool]) -> int:
        row = next(
            row
            for row, values in enumerate(self._rows)
            if row not in self._taken and predicate(values)
        )
        self._taken.add(row)
        return row


def corrupted(table: pa.Table, cells: dict[Cell, object]) -> pa.Table:
    """``table`` with the given cells replaced (None is a null)."""
    for column in {column for column, _ in cells}:
        field = table.field(column)
        values = table[column].to_pylist()
        for (name, row), value in cells.items():
            if name == column:
                values[row] = value
        index = table.schema.get_field_index(column)
        table = table.set_column(index, field, pa.array(values, field.type))
    return table


def broken(report: QualityReport) -> set[tuple[str, str | None]]:
    return {(failure.expectation, failure.column) for failure in report.failed}


@pytest.fixture(scope="module")
def valid_tables(quiet_market: MarketTables, busy_market: MarketTables) -> dict[str, pa.Table]:
    """Trades and bars of a quiet market (many empty seconds); 1,200 seconds of features
    and training rows of a busy one, from minute 10 on, where every windowed feature is
    defined (test_a_valid_table_passes_every_expectation validates whole tables, warm-up
    included)."""
    return {
        "silver.trades": quiet_market.trades,
        "silver.bars_1s": quiet_market.bars_1s,
        "silver.features_1s": busy_market.features_1s.slice(600, 1_200),
        "gold.training_1s": busy_market.training_1s.slice(600, 1_200),
    }


@pytest.fixture(scope="module")
def corrupted_reports(valid_tables):
    """Each table with all of its corruptions, validated once (on first use)."""
    reports: dict[str, QualityReport] = {}

    def report(table_name: str) -> QualityReport:
        if table_name not in reports:
            table = valid_tables[table_name]
            cells: dict[Cell, object] = {}
            for corruption in CORRUPTIONS[table_name](table).values():
                assert not cells.keys() & corruption.keys(), "corruptions must not overlap"
                cells |= corruption
            reports[table_name] = validate_table(table_name, corrupted(table, cells))
        return reports[table_name]

    return report


# Valid tables


@pytest.mark.parametrize(
    ("table_name", "market", "attribute"),
    [
        ("silver.trades", "quiet_market", "trades"),
        ("silver.bars_1s", "quiet_market", "bars_1s"),
        ("silver.features_1s", "busy_market", "features_1s"),
        ("gold.training_1s", "busy_market", "training_1s"),
    ],
)
def test_a_valid_table_passes_every_expectation(table_name, market, attribute, request):
    table = getattr(request.getfixturevalue(market), attribute)
    report = validate_table(table_name, table)
    assert report.failed == []
    assert report.passed
    assert report.suite == table_name
    assert report.evaluated == len(SUITES[table_name]().expectations)
    assert report.rows == table.num_rows


def test_an_empty_window_is_not_judged_here():
    """Whether a window may be empty is for the completeness checks."""
    assert validate_table("gold.training_1s", tables.GOLD_TRAINING_1S.schema.empty_table()).passed


def test_the_valid_tables_exercise_the_conditional_rules(quiet_market, busy_market):
    """Guards the fixtures: empty and unquoted seconds, and warm-up NaN under the 1 % bound."""
    bars = quiet_market.bars_1s
    assert 0 in bars["n_trades"].to_pylist()
    assert 0 < bars["bid_price_e8"].null_count < bars.num_rows
    burst = busy_market.features_1s["burst_1s"].to_pylist()
    assert 0 < sum(math.isnan(value) for value in burst) < 0.01 * len(burst)


# Corruptions


@pytest.mark.parametrize(
    ("table_name", "corruption"),
    [
        (table_name, corruption)
        for table_name, rules in BROKEN_RULES.items()
        for corruption in rules
    ],
)
def test_a_corruption_breaks_its_rule(table_name, corruption, corrupted_reports):
    assert BROKEN_RULES[table_name][corruption] in broken(corrupted_reports(table_name))


@pytest.mark.parametrize("table_name", sorted(BROKEN_RULES))
def test_corruptions_break_nothing_else(table_name, corrupted_reports):
    assert broken(corrupted_reports(table_name)) == set(BROKEN_RULES[table_name].values())


def test_failures_quote_counts_and_values(corrupted_reports):
    failures = {(f.expectation, f.column): f for f in corrupted_reports("silver.trades").failed}
    duplicate = failures[UNIQUE, "agg_trade_id"]
    assert duplicate.unexpected_count == 2  # both rows that share the id
    assert "'kafka'" in failures[IN_SET, "source"].observed
    assert "-100000" in failures[BETWEEN, "qty_e8"].observed
    returns = {(f.expectation, f.column): f for f in corrupted_reports("silver.features_1s").failed}
    assert "allowed 1 %" in returns[NOT_NULL, "ret_1s"].observed


def test_schema_drift_is_named(valid_tables):
    trades = valid_tables["silver.trades"]
    drifted = trades.drop_columns(["is_best_match"]).append_column(
        "colour", pa.array(["red"] * trades.num_rows)
    )
    version = drifted.schema.get_field_index("version")
    drifted = drifted.set_column(version, "version", drifted["version"].cast(pa.float64()))
    report = validate_table("silver.trades", drifted)
    failures = {(f.expectation, f.column): f for f in report.failed}
    assert failures[COLUMN_SET, None].observed == "unexpected ['colour']; missing ['is_best_match']"
    assert failures["expect_column_type_to_be", "version"].observed == "observed 'float64'"
    # The rules on the missing column fail too, as errors rather than silently passing.
    errors = {f.column for f in report.failed if f.observed.startswith("error:")}
    assert errors == {"is_best_match"}


def test_a_training_table_without_its_label_is_named(valid_tables):
    report = validate_table(
        "gold.training_1s", valid_tables["gold.training_1s"].drop_columns([LABEL])
    )
    failures = {(f.expectation, f.column): f for f in report.failed}
    assert failures[COLUMN_SET, None].observed == f"missing ['{LABEL}']"


# The runner


def test_calls_are_independent_of_earlier_ones(valid_tables, corrupted_reports):
    assert not corrupted_reports("silver.trades").passed
    assert validate_table("silver.trades", valid_tables["silver.trades"]).passed


def test_an_unknown_table_raises():
    with pytest.raises(UnknownTable, match=r"silver\.candles"):
        validate_table("silver.candles", pa.table({"x": [1]}))


def test_validation_prints_nothing(valid_tables, capfd):
    validate_table("silver.trades", corrupted(valid_tables["silver.trades"], {("qty_e8", 0): 0}))
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


def test_a_failed_report_is_dagster_metadata(corrupted_reports):
    report = corrupted_reports("gold.training_1s")
    metadata = report.as_metadata()
    assert metadata["passed"] is False
    assert metadata["failed"] == len(BROKEN_RULES["gold.training_1s"])
    assert all(isinstance(value, str | int | float | bool) for value in metadata.values())
    assert json.loads(json.dumps(metadata)) == metadata
