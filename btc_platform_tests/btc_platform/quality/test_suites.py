"""The suites' declarations: one per table, columns that exist, rules taken from the contract."""

from __future__ import annotations

import pytest

pytest.importorskip("great_expectations", reason="the batch extra is not installed")

from btc_platform.lakehouse import tables
from btc_platform.quality import suites
from realtime.features.contract import CONTRACT_V1

COLUMNS = {
    spec.qualified_name: spec.schema.names
    for spec in (
        tables.SILVER_TRADES,
        tables.SILVER_BARS_1S,
        tables.SILVER_FEATURES_1S,
        tables.GOLD_TRAINING_1S,
    )
}


@pytest.mark.parametrize("table_name", sorted(COLUMNS))
def test_each_table_has_a_suite_of_its_name(table_name):
    assert suites.SUITES[table_name]().name == table_name


def test_each_call_builds_a_new_suite():
    assert suites.trades_suite() is not suites.trades_suite()


@pytest.mark.parametrize("table_name", sorted(COLUMNS))
def test_expectations_name_only_declared_columns(table_name):
    declared = set(COLUMNS[table_name])
    named = set()
    for expectation in suites.SUITES[table_name]().expectations:
        kwargs = expectation.configuration.kwargs
        named |= {kwargs[key] for key in ("column", "column_A", "column_B") if key in kwargs}
    assert named <= declared


def test_the_schema_part_follows_the_declared_arrow_schema():
    configurations = [e.configuration for e in suites.bars_suite().expectations]
    expectations = {
        (c.type, c.kwargs["column"]): c.kwargs
        for c in configurations
        if c.type in {"expect_column_type_to_be", "expect_column_values_to_not_be_null"}
        and not c.kwargs.get("row_condition")
    }
    assert expectations["expect_column_type_to_be", "ts"]["type_"] == "datetime64[us, UTC]"
    assert expectations["expect_column_type_to_be", "version"]["type_"] == "int32[pyarrow]"
    assert expectations["expect_column_type_to_be", "symbol"]["type_"] == "str"
    assert ("expect_column_type_to_be", "notional_e16") not in expectations  # see _declared_schema
    assert ("expect_column_values_to_not_be_null", "n_trades") in expectations
    assert ("expect_column_values_to_not_be_null", "bid_price_e8") not in expectations


def test_never_null_features_come_from_the_contract():
    assert set(suites.NEVER_NULL_FEATURES) == {
        "n_trades_1s",
        "buy_vol_1s",
        "sell_vol_1s",
        "tvi_1s",
        "avg_trade_size_1s",
    }
    assert "spread" not in suites.WINDOWED_INPUTS  # not a model input: null in trade history
    assert set(suites.WINDOWED_INPUTS) | set(suites.NEVER_NULL_FEATURES) == set(
        CONTRACT_V1.model_inputs
    )
