"""A tiny dbt: SQL models run by DuckDB over Arrow, ordered by their references.

``SqlProject.load()`` reads ``models/<schema>/<name>.sql``; ``SqlProject.run`` runs a
selection of them on a DuckDB connection and returns Arrow tables.
"""

from dbt_like_sql.errors import (
    AmbiguousRelation,
    InvalidModelPath,
    InvalidVar,
    MissingRef,
    MissingRelation,
    MissingVar,
    ModelFailed,
    RefCycle,
    SqlProjectError,
    UnknownModel,
    UnknownTemplate,
)
from dbt_like_sql.model import Model
from dbt_like_sql.project import SqlProject

__all__ = [
    "AmbiguousRelation",
    "InvalidModelPath",
    "InvalidVar",
    "MissingRef",
    "MissingRelation",
    "MissingVar",
    "Model",
    "ModelFailed",
    "RefCycle",
    "SqlProject",
    "SqlProjectError",
    "UnknownModel",
    "UnknownTemplate",
]
