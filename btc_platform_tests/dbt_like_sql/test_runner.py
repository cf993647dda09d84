"""Running models on DuckDB: given relations, materialised models, typed failures."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from btc_platform_tests.dbt_like_sql.model_files import ref, write_models
from dbt_like_sql import InvalidVar, MissingRelation, MissingVar, ModelFailed, SqlProject

ROWS = pa.table({"x": pa.array([3, 1, 2], pa.int64())})


@pytest.fixture
def chain(tmp_path: Path) -> SqlProject:
    """``s.a`` doubles the source ``in.rows``; ``s.b`` adds var ``k``; ``s.c`` counts."""
    return SqlProject.load(
        write_models(
            tmp_path,
            {
                "s.a": "SELECT x * 2 AS x FROM {{ source('in.rows') }} ORDER BY x",
                "s.b": f"SELECT x + {{{{ var('k') }}}} AS x FROM {ref('s.a')} ORDER BY x",
                "s.c": f"SELECT count(*) AS n FROM {ref('s.b')}",
            },
        )
    )


def test_selected_models_run_in_order_and_come_back_as_arrow(
    chain: SqlProject, con: duckdb.DuckDBPyConnection
):
    results = chain.run(con, ["s.b", "s.a"], {"in.rows": ROWS}, {"k": 10})
    assert list(results) == ["s.b", "s.a"]
    assert results["s.a"].to_pydict() == {"x": [2, 4, 6]}
    assert results["s.b"].to_pydict() == {"x": [12, 14, 16]}
    # Each model is a DuckDB table at its name, for later models and for the caller.
    assert con.execute('SELECT sum(x) FROM "s"."b"').fetchone() == (42,)


def test_with_ancestors_runs_what_the_selection_reads_and_returns_the_selection(
    chain: SqlProject, con: duckdb.DuckDBPyConnection
):
    with pytest.raises(MissingRelation):
        chain.run(con, ["s.c"], {"in.rows": ROWS}, {"k": 1})
    results = chain.run(con, ["s.c"], {"in.rows": ROWS}, {"k": 1}, with_ancestors=True)
    assert results == {"s.c": pa.table({"n": pa.array([3], pa.int64())})}
    assert con.execute('SELECT count(*) FROM "s"."a"').fetchone() == (3,)


def test_a_ref_given_as_a_relation_is_read_not_recomputed(tmp_path: Path):
    root = write_models(
        tmp_path,
        {
            "s.a": "SELECT error('s.a must not run') AS x",
            "s.b": f"SELECT x + 1 AS x FROM {ref('s.a')} ORDER BY x",
        },
    )
    project = SqlProject.load(root)
    with duckdb.connect() as con:
        for with_ancestors in (False, True):
            results = project.run(con, ["s.b"], {"s.a": ROWS}, {}, with_ancestors=with_ancestors)
            assert results["s.b"].to_pydict() == {"x": [2, 3, 4]}
        with pytest.raises(ModelFailed, match=r"s\.a must not run"):
            project.run(con, ["s.a"], {}, {})


def test_a_relation_may_be_given_in_one_run_and_computed_in_the_next(
    chain: SqlProject, con: duckdb.DuckDBPyConnection
):
    chain.run(con, ["s.b"], {"s.a": ROWS}, {"k": 0})  # s.a is a view over ROWS
    chain.run(con, ["s.a"], {"in.rows": ROWS}, {})  # and now a table
    assert chain.run(con, ["s.b"], {"s.a": ROWS}, {"k": 0})["s.b"].to_pydict() == {"x": [1, 2, 3]}


def test_a_record_batch_reader_can_be_read_twice_by_one_model(tmp_path: Path):
    root = write_models(
        tmp_path,
        {
            "s.pairs": "SELECT count(*) AS n"
            " FROM {{ source('in.rows') }} AS a, {{ source('in.rows') }} AS b"
        },
    )
    reader = pa.RecordBatchReader.from_batches(ROWS.schema, ROWS.to_batches())
    with duckdb.connect() as con:
        results = SqlProject.load(root).run(con, ["s.pairs"], {"in.rows": reader}, {})
    assert results["s.pairs"].to_pydict() == {"n": [9]}


def test_timestamptz_comes_back_in_utc(tmp_path: Path, con: duckdb.DuckDBPyConnection):
    root = write_models(tmp_path, {"s.t": "SELECT make_timestamptz(1000000) AS ts"})
    con.execute("SET TimeZone = 'America/New_York'")
    results = SqlProject.load(root).run(con, ["s.t"], {}, {})
    assert results["s.t"].schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert results["s.t"]["ts"].cast(pa.int64()).to_pylist() == [1_000_000]


def test_a_missing_var_names_model_and_var(chain: SqlProject, con: duckdb.DuckDBPyConnection):
    with pytest.raises(MissingVar) as raised:
        chain.run(con, ["s.a", "s.b"], {"in.rows": ROWS}, {"kk": 1})
    assert (raised.value.model, raised.value.var) == ("s.b", "k")
    assert con.execute("SELECT count(*) FROM duckdb_tables()").fetchone() == (0,)  # nothing ran


@pytest.mark.parametrize("value", [True, None, [1], 1e400, b"1"])
def test_a_var_of_another_type_is_refused(chain: SqlProject, con: duckdb.DuckDBPyConnection, value):
    with pytest.raises(InvalidVar) as raised:
        chain.run(con, ["s.a", "s.b"], {"in.rows": ROWS}, {"k": value})
    assert raised.value.var == "k"


def test_an_injection_attempt_is_only_a_string(tmp_path: Path, con: duckdb.DuckDBPyConnection):
    root = write_models(tmp_path, {"s.echo": "SELECT {{ var('symbol') }} AS symbol"})
    con.execute("CREATE TABLE victim AS SELECT 1 AS x")
    attack = "BTCUSDT'; DROP TABLE victim; SELECT '"
    results = SqlProject.load(root).run(con, ["s.echo"], {}, {"symbol": attack})
    assert results["s.echo"].to_pydict() == {"symbol": [attack]}
    assert con.execute("SELECT x FROM victim").fetchall() == [(1,)]


def test_a_duckdb_error_is_wrapped_with_the_model_name(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
):
    root = write_models(
        tmp_path,
        {
            "s.a": "SELECT 1 AS x",
            "s.b": f"SELECT no_such_column FROM {ref('s.a')}",
        },
    )
    with pytest.raises(ModelFailed) as raised:
        SqlProject.load(root).run(con, ["s.a", "s.b"], {}, {})
    assert raised.value.model == "s.b"
    assert isinstance(raised.value.__cause__, duckdb.Error)
    assert "no_such_column" in str(raised.value)


@pytest.mark.parametrize(
    "sql", ["SELECT 1 AS x; SELECT 2 AS x", "CREATE TABLE t AS SELECT 1 AS x", "-- nothing"]
)
def test_a_model_is_exactly_one_select(tmp_path: Path, con: duckdb.DuckDBPyConnection, sql: str):
    root = write_models(tmp_path, {"s.a": sql})
    with pytest.raises(ModelFailed, match="exactly one SELECT"):
        SqlProject.load(root).run(con, ["s.a"], {}, {})
    assert con.execute("SELECT count(*) FROM duckdb_tables()").fetchone() == (0,)


def test_a_model_may_end_in_a_semicolon_and_a_comment(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
):
    root = write_models(tmp_path, {"s.a": "SELECT 1 AS x; -- done"})
    assert SqlProject.load(root).run(con, ["s.a"], {}, {})["s.a"].to_pydict() == {"x": [1]}
