"""Loading a project: names from paths, checked refs, a deterministic order, run plans."""

from __future__ import annotations

from pathlib import Path

import pytest

from btc_platform_tests.dbt_like_sql.model_files import ref, write_models
from dbt_like_sql import (
    AmbiguousRelation,
    InvalidModelPath,
    MissingRef,
    MissingRelation,
    MissingVar,
    RefCycle,
    SqlProject,
    UnknownModel,
    UnknownTemplate,
)


def test_the_package_models_load_in_order_with_what_they_read(project: SqlProject):
    assert project.order == ("gold.training_1s", "silver.trades", "silver.bars_1s")
    trades, bars, training = (
        project.models[name] for name in ("silver.trades", "silver.bars_1s", "gold.training_1s")
    )
    assert (trades.refs, trades.sources) == ((), ("bronze.agg_trades",))
    assert set(trades.vars) == {"window_start_us", "window_end_us"}
    assert (bars.refs, bars.sources) == (("silver.trades",), ())
    assert set(bars.vars) == {"window_start_sec", "window_end_sec", "symbol", "ingest_ts_us"}
    assert (training.refs, training.sources) == ((), ("silver.features_1s",))
    assert set(training.vars) == {
        "window_start_sec",
        "window_end_sec",
        "last_complete_sec",
        "ingest_ts_us",
    }


def test_order_puts_refs_first_and_breaks_ties_by_name(tmp_path: Path):
    root = write_models(
        tmp_path,
        {
            "s.d": "SELECT 1 AS x",
            "s.b": "SELECT 1 AS x",
            "s.a": f"SELECT * FROM {ref('s.d')}",
            "s.c": f"SELECT * FROM {ref('s.b')}",
            "r.z": f"SELECT * FROM {ref('s.a')} JOIN {ref('s.c')} USING (x)",
        },
    )
    # Ready at first: s.b, s.d. s.b goes first and makes s.c ready, which sorts before s.d.
    assert SqlProject.load(root).order == ("s.b", "s.c", "s.d", "s.a", "r.z")
    assert SqlProject.load(str(root)).order == SqlProject.load(root).order


def test_a_cycle_is_named_from_its_smallest_model(tmp_path: Path):
    root = write_models(
        tmp_path,
        {
            "s.free": "SELECT 1 AS x",
            "s.c": f"SELECT * FROM {ref('s.a')}",
            "s.a": f"SELECT * FROM {ref('s.b')}",
            "s.b": f"SELECT * FROM {ref('s.c')} JOIN {ref('s.free')} USING (x)",
        },
    )
    with pytest.raises(RefCycle) as raised:
        SqlProject.load(root)
    assert raised.value.cycle == ("s.a", "s.b", "s.c", "s.a")
    assert "s.a -> s.b -> s.c -> s.a" in str(raised.value)


def test_a_model_reading_itself_is_a_cycle(tmp_path: Path):
    root = write_models(tmp_path, {"s.a": f"SELECT * FROM {ref('s.a')}"})
    with pytest.raises(RefCycle) as raised:
        SqlProject.load(root)
    assert raised.value.cycle == ("s.a", "s.a")


def test_a_ref_to_no_model_is_missing(tmp_path: Path):
    root = write_models(tmp_path, {"s.a": f"SELECT * FROM {ref('s.nope')}"})
    with pytest.raises(MissingRef) as raised:
        SqlProject.load(root)
    assert (raised.value.model, raised.value.ref) == ("s.a", "s.nope")


def test_unknown_template_syntax_names_the_file_and_line(tmp_path: Path):
    root = write_models(tmp_path, {"s.a": "SELECT 1\nFROM {{ this }}"})
    with pytest.raises(UnknownTemplate) as raised:
        SqlProject.load(root)
    assert raised.value.path == str(root / "s" / "a.sql")
    assert raised.value.line == 2


@pytest.mark.parametrize("relative", ["top.sql", "s/deeper/m.sql", "Silver/m.sql", "s/bars-1s.sql"])
def test_a_model_outside_schema_slash_name_is_refused(tmp_path: Path, relative: str):
    (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / relative).write_text("SELECT 1", encoding="utf-8")
    with pytest.raises(InvalidModelPath):
        SqlProject.load(tmp_path)


@pytest.fixture
def chain(tmp_path: Path) -> SqlProject:
    """``s.c`` reads ``s.b`` reads ``s.a`` reads source ``in.rows``; ``s.c`` needs var ``k``."""
    return SqlProject.load(
        write_models(
            tmp_path,
            {
                "s.a": "SELECT * FROM {{ source('in.rows') }}",
                "s.b": f"SELECT * FROM {ref('s.a')}",
                "s.c": f"SELECT *, {{{{ var('k') }}}} AS k FROM {ref('s.b')}",
            },
        )
    )


def names(plan) -> list[str]:
    return [model.name for model in plan]


def test_a_plan_runs_the_selection_in_order(chain: SqlProject):
    assert names(chain.plan(["s.b", "s.a"], {"in.rows"}, set())) == ["s.a", "s.b"]


def test_with_ancestors_adds_what_is_not_given(chain: SqlProject):
    assert names(chain.plan(["s.c"], {"in.rows"}, {"k"}, with_ancestors=True)) == [
        "s.a",
        "s.b",
        "s.c",
    ]
    assert names(chain.plan(["s.c"], {"s.b"}, {"k"}, with_ancestors=True)) == ["s.c"]


def test_a_ref_neither_given_nor_run_is_missing(chain: SqlProject):
    with pytest.raises(MissingRelation) as raised:
        chain.plan(["s.c"], {"in.rows"}, {"k"})
    assert (raised.value.model, raised.value.relation, raised.value.kind) == ("s.c", "s.b", "ref")


def test_a_source_not_given_is_missing(chain: SqlProject):
    with pytest.raises(MissingRelation) as raised:
        chain.plan(["s.a"], set(), set())
    assert (raised.value.model, raised.value.relation, raised.value.kind) == (
        "s.a",
        "in.rows",
        "source",
    )


def test_a_plan_checks_vars_before_running(chain: SqlProject):
    with pytest.raises(MissingVar) as raised:
        chain.plan(["s.c"], {"s.b"}, set())
    assert (raised.value.model, raised.value.var) == ("s.c", "k")


def test_a_selection_must_name_models_not_given_ones(chain: SqlProject):
    with pytest.raises(UnknownModel):
        chain.plan(["s.zzz"], set(), set())
    with pytest.raises(AmbiguousRelation):
        chain.plan(["s.b"], {"s.a", "s.b"}, set())
    with pytest.raises(TypeError):
        chain.plan("s.a", {"in.rows"}, set())
