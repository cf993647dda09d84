"""A model: what it reads, and its SQL rendered with relations and literals."""

from __future__ import annotations

import pytest

from dbt_like_sql.errors import MissingVar
from dbt_like_sql.model import Model

SQL = """SELECT *
FROM {{ ref('silver.trades') }} AS t
JOIN {{ source('bronze.quotes') }} USING (ts_sec)
WHERE ts_sec >= {{ var('start') }} AND ts_sec < {{ var('end') }} AND {{ var('start') }} > 0
UNION ALL SELECT * FROM {{ ref('silver.trades') }}"""


def test_a_model_records_refs_sources_and_vars_once_in_file_order():
    model = Model.parse("gold.x", "models/gold/x.sql", SQL)
    assert model.refs == ("silver.trades",)
    assert model.sources == ("bronze.quotes",)
    assert model.vars == ("start", "end")


def test_render_writes_relations_as_identifiers_and_vars_as_given_literals():
    model = Model.parse(
        "gold.x", "models/gold/x.sql", "SELECT {{ var('a') }} FROM {{ ref('s.t') }}"
    )
    assert model.render({"a": "(-1)"}) == 'SELECT (-1) FROM "s"."t"'


def test_render_names_the_model_and_the_missing_var():
    model = Model.parse("gold.x", "models/gold/x.sql", SQL)
    with pytest.raises(MissingVar) as raised:
        model.render({"start": "1"})
    assert (raised.value.model, raised.value.var) == ("gold.x", "end")
