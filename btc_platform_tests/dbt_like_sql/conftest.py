"""Fixtures of the SQL project tests: the package's project and a private DuckDB."""

from __future__ import annotations

from collections.abc import Iterator
from importlib.util import find_spec

import pytest

# DuckDB comes with the batch extra; without it these tests cannot run, so none is collected.
collect_ignore_glob = [] if find_spec("duckdb") else ["test_*.py"]


@pytest.fixture(scope="session")
def project():
    """The package's own models, loaded once."""
    from dbt_like_sql import SqlProject

    return SqlProject.load()


@pytest.fixture
def con() -> Iterator:
    """An in-memory DuckDB connection private to the test."""
    import duckdb

    connection = duckdb.connect()
    try:
        yield connection
    finally:
        connection.close()
