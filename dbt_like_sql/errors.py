"""Typed errors of the SQL project; all are ``SqlProjectError``s.

Each names what the caller must fix: the file and line of a template, the model and the
var, the models of a cycle. Load-time errors (a project that cannot run at all) are raised
by ``SqlProject.load``; the others by ``SqlProject.run``.
"""

from __future__ import annotations


class SqlProjectError(Exception):
    """Base class of everything the project and runner raise on purpose."""


class InvalidModelPath(SqlProjectError):
    """A ``.sql`` file that is not ``models/<schema>/<name>.sql`` with identifier names."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(
            f"{path}: a model must be models/<schema>/<name>.sql, "
            "both lowercase identifiers ([a-z_][a-z0-9_]*)"
        )


class UnknownTemplate(SqlProjectError):
    """Template syntax other than ``ref``, ``source`` and ``var`` with one quoted name."""

    def __init__(self, path: str, line: int, text: str) -> None:
        self.path = path
        self.line = line
        self.text = text
        super().__init__(f"{path}:{line}: unknown template syntax {text!r}")


class MissingRef(SqlProjectError):
    """A model refers to a model the project does not have."""

    def __init__(self, model: str, ref: str) -> None:
        self.model = model
        self.ref = ref
        super().__init__(f"model {model} refers to {ref}, which is not a model of the project")


class RefCycle(SqlProjectError):
    """Models refer to each other in a cycle; ``cycle`` starts and ends with the same model."""

    def __init__(self, cycle: tuple[str, ...]) -> None:
        self.cycle = cycle
        super().__init__("models refer to each other in a cycle: " + " -> ".join(cycle))


class UnknownModel(SqlProjectError):
    """A model selected to run is not in the project."""

    def __init__(self, model: str) -> None:
        self.model = model
        super().__init__(f"no model named {model}")


class AmbiguousRelation(SqlProjectError):
    """A model was both selected to run and given as a relation: which one is meant?"""

    def __init__(self, model: str) -> None:
        self.model = model
        super().__init__(f"{model} is both selected to run and given in relations")


class MissingRelation(SqlProjectError):
    """A model reads a ref or source that is neither given nor part of the run."""

    def __init__(self, model: str, relation: str, kind: str) -> None:
        self.model = model
        self.relation = relation
        self.kind = kind
        remedy = "give it in relations" + (
            ", select it or run with with_ancestors=True" if kind == "ref" else ""
        )
        super().__init__(f"model {model} reads {kind} {relation}, which is not available: {remedy}")


class MissingVar(SqlProjectError):
    """A model reads a var the caller did not give."""

    def __init__(self, model: str, var: str) -> None:
        self.model = model
        self.var = var
        super().__init__(f"model {model} needs var {var!r}, which was not given")


class InvalidVar(SqlProjectError):
    """A var value that cannot be a SQL literal: only int, finite float and str are."""

    def __init__(self, var: str, value: object, reason: str) -> None:
        self.var = var
        self.value = value
        super().__init__(f"var {var!r} = {value!r} ({type(value).__name__}): {reason}")


class ModelFailed(SqlProjectError):
    """DuckDB refused a model, or its file is not exactly one SELECT statement."""

    def __init__(self, model: str, reason: str) -> None:
        self.model = model
        self.reason = reason
        super().__init__(f"model {model} failed: {reason}")
