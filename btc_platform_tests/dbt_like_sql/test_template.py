"""The template language: three placeholders, typed errors, literals that cannot inject."""

from __future__ import annotations

from decimal import Decimal

import duckdb
import pytest

from dbt_like_sql.errors import InvalidVar, UnknownTemplate
from dbt_like_sql.template import Placeholder, parse_template, relation_identifier, sql_literal


def test_placeholders_are_split_from_the_sql_with_their_lines():
    text = "SELECT *\nFROM {{ ref('silver.trades') }}\nWHERE x < {{var(\"limit\")}}"
    assert parse_template(text, "m.sql") == (
        "SELECT *\nFROM ",
        Placeholder("ref", "silver.trades", 2),
        "\nWHERE x < ",
        Placeholder("var", "limit", 3),
    )


def test_plain_sql_is_one_segment():
    assert parse_template("SELECT {'a': {'b': 1}} AS s", "m.sql") == (
        "SELECT {'a': {'b': 1}} AS s",
    )


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("SELECT 1\n{% if full %}x{% endif %}", 2),
        ("SELECT 1 {# note #}", 1),
        ("SELECT\n\n{{ config(materialized='view') }}", 3),
        ("SELECT {{ ref(silver.trades) }}", 1),
        ("SELECT {{ ref('trades') }}", 1),  # a relation is schema.name
        ("SELECT {{ source('Bronze.agg_trades') }}", 1),
        ("SELECT {{ var('window start') }}", 1),
        ("SELECT {{ var('a') + 1 }}", 1),
        ("SELECT {{ ref('a.b') }}, {{ ref('a.c')", 1),
    ],
)
def test_other_syntax_is_an_unknown_template_naming_file_and_line(text: str, line: int):
    with pytest.raises(UnknownTemplate) as raised:
        parse_template(text, "models/s/m.sql")
    assert (raised.value.path, raised.value.line) == ("models/s/m.sql", line)
    assert str(raised.value).startswith(f"models/s/m.sql:{line}: unknown template syntax")


def test_relation_identifier_is_quoted_schema_and_name():
    assert relation_identifier("silver.bars_1s") == '"silver"."bars_1s"'


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        (0, "0"),
        (1_767_225_600_000_000, "1767225600000000"),
        (-5, "(-5)"),
        (0.1, "CAST('0.1' AS DOUBLE)"),
        (1e-300, "CAST('1e-300' AS DOUBLE)"),
        ("BTCUSDT", "'BTCUSDT'"),
        ("it's", "'it''s'"),
    ],
)
def test_literals(value, literal: str):
    assert sql_literal("v", value) == literal


class Sneaky(str):
    """A str whose own methods would smuggle SQL past a careless quoting."""

    def replace(self, *args) -> str:
        return "' OR true --"

    def __str__(self) -> str:
        return "' OR true --"


@pytest.mark.parametrize(
    "value",
    [
        "x'; DROP TABLE t; --",
        "\\'; SELECT 1; --",
        "a\nb -- c */ /*",
        Sneaky("plain"),
        -(2**63),
        2**63 - 1,
        0.1,
        -2.5e-8,
    ],
)
def test_a_literal_reads_back_as_exactly_its_value(value):
    """Whatever the value, DuckDB reads one literal of that value: no SQL gets in."""
    with duckdb.connect() as con:
        (result,) = con.execute(f"SELECT {sql_literal('v', value)}").fetchone()
    assert result == (str.__str__(value) if isinstance(value, str) else value)


def test_a_negative_number_after_a_minus_is_not_a_comment():
    with duckdb.connect() as con:
        (result,) = con.execute(f"SELECT 1-{sql_literal('v', -5)}").fetchone()
    assert result == 6


@pytest.mark.parametrize(
    "value",
    [True, None, b"x", [1], Decimal("1.5"), float("nan"), float("inf"), 2**63, "a\x00b"],
)
def test_other_values_are_invalid_vars(value):
    with pytest.raises(InvalidVar) as raised:
        sql_literal("window_start_sec", value)
    assert raised.value.var == "window_start_sec"
