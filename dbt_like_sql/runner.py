"""The DuckDB side of a run: expose Arrow relations, materialise models, read results back.

Every relation lives at its model name, ``"<schema>"."<name>"``, whether it was given or
computed, so a model's SQL reads the same whichever way its inputs arrive.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import duckdb
import pyarrow as pa

from dbt_like_sql.errors import ModelFailed
from dbt_like_sql.model import Model
from dbt_like_sql.template import relation_identifier, sql_literal

Relation = pa.Table | pa.RecordBatchReader
"""A given input: a table is read in place, a reader is streamed into DuckDB once."""
VarValue = int | float | str


def run_plan(
    con: duckdb.DuckDBPyConnection,
    plan: Sequence[Model],
    selected: Sequence[str],
    relations: Mapping[str, Relation],
    vars: Mapping[str, VarValue],
) -> dict[str, pa.Table]:
    """Run the checked ``plan`` in order; return the ``selected`` models' tables.

    Only the relations the plan reads are exposed; the others are left alone.
    """
    var_literals = {name: sql_literal(name, value) for name, value in vars.items()}
    con.execute("SET TimeZone = 'UTC'")
    read = {name for model in plan for name in (*model.refs, *model.sources)}
    for name in sorted(read & relations.keys()):
        expose_relation(con, name, relations[name])
    for model in plan:
        materialise(con, model, var_literals)
    return {
        name: con.sql(f"SELECT * FROM {relation_identifier(name)}").to_arrow_table()
        for name in dict.fromkeys(selected)
    }


def expose_relation(con: duckdb.DuckDBPyConnection, name: str, relation: Relation) -> None:
    """Make the Arrow ``relation`` readable in DuckDB as ``name`` (``schema.name``).

    A table is scanned in place through a view. A reader can be scanned only once and a
    model may read a relation twice (a self-join), so a reader is streamed into a table.
    """
    schema, table = name.split(".")
    arrow_name = f"arrow__{schema}__{table}"
    _replace(con, name)
    con.register(arrow_name, relation)
    if isinstance(relation, pa.RecordBatchReader):
        con.execute(f"CREATE TABLE {relation_identifier(name)} AS SELECT * FROM {arrow_name}")
        con.unregister(arrow_name)
    else:
        con.execute(f"CREATE VIEW {relation_identifier(name)} AS SELECT * FROM {arrow_name}")


def materialise(
    con: duckdb.DuckDBPyConnection, model: Model, var_literals: Mapping[str, str]
) -> None:
    """Run ``model`` into the table ``model.name``; DuckDB errors become ``ModelFailed``."""
    sql = model.render(var_literals)
    try:
        statements = con.extract_statements(sql)
        if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
            raise ModelFailed(model.name, f"{model.path} must hold exactly one SELECT statement")
        _replace(con, model.name)
        # A newline before the query: it may end in a "--" comment.
        con.execute(f"CREATE TABLE {relation_identifier(model.name)} AS\n{statements[0].query}")
    except duckdb.Error as error:
        raise ModelFailed(model.name, f"{type(error).__name__}: {error}") from error


def _replace(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Create the schema of ``name`` and drop what holds ``name`` now, a table or a view.

    A relation given in one run may be computed in the next, and DuckDB's ``CREATE OR
    REPLACE`` cannot turn a view into a table.
    """
    schema, table = name.split(".")
    con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    existing = con.execute(
        "SELECT table_type FROM information_schema.tables"
        " WHERE table_catalog = current_database() AND table_schema = ? AND table_name = ?",
        [schema, table],
    ).fetchone()
    if existing is not None:
        kind = "VIEW" if existing[0] == "VIEW" else "TABLE"
        con.execute(f"DROP {kind} {relation_identifier(name)}")
