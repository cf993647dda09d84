"""The project: every model, checked refs, a deterministic order, and the plan of a run.

Loading and planning are pure (loading only reads the model files); ``run`` checks the plan
first, then hands it to ``runner``, the one module that talks to DuckDB.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

import duckdb
import pyarrow as pa

from dbt_like_sql import runner
from dbt_like_sql.errors import (
    AmbiguousRelation,
    InvalidModelPath,
    MissingRef,
    MissingRelation,
    MissingVar,
    RefCycle,
    UnknownModel,
)
from dbt_like_sql.model import Model
from dbt_like_sql.runner import Relation, VarValue
from dbt_like_sql.template import RELATION_NAME


@dataclass(frozen=True)
class SqlProject:
    """Models by name and their topological order (a model after every model it refers to)."""

    models: Mapping[str, Model]
    order: tuple[str, ...]

    @classmethod
    def load(cls, path: str | os.PathLike[str] | Traversable | None = None) -> SqlProject:
        """Parse every ``<schema>/<name>.sql`` under ``path`` (default: the package's models).

        Raises ``InvalidModelPath``, ``UnknownTemplate``, ``MissingRef`` or ``RefCycle``.
        """
        if path is None:
            root = files("dbt_like_sql") / "models"
        elif isinstance(path, str | os.PathLike):
            root = Path(path)
        else:
            root = path
        models = {}
        for parts, file in _sql_files(root, ()):
            display = str(file)
            name = ".".join((*parts[:-1], parts[-1].removesuffix(".sql")))
            if len(parts) != 2 or not RELATION_NAME.fullmatch(name):
                raise InvalidModelPath(display)
            models[name] = Model.parse(name, display, file.read_text(encoding="utf-8"))
        return cls(models, _topological_order(models))

    def plan(
        self,
        models: Sequence[str],
        given: Collection[str],
        var_names: Collection[str],
        with_ancestors: bool = False,
    ) -> tuple[Model, ...]:
        """The models to run, in order, for ``models`` when ``given`` relations exist.

        ``with_ancestors`` adds every model the selection reads that is not given. Checks
        everything a run needs before it starts, so a run fails before doing any work.
        """
        if isinstance(models, str):
            raise TypeError("models is a sequence of model names, not one name")
        selected = set(models)
        for name in sorted(selected):
            if name not in self.models:
                raise UnknownModel(name)
            if name in given:
                raise AmbiguousRelation(name)
        to_run = set(selected)
        if with_ancestors:
            pending = sorted(selected)
            while pending:
                for ref in self.models[pending.pop()].refs:
                    if ref not in given and ref not in to_run:
                        to_run.add(ref)
                        pending.append(ref)
        plan = tuple(self.models[name] for name in self.order if name in to_run)
        for model in plan:
            for ref in model.refs:
                if ref not in to_run and ref not in given:
                    raise MissingRelation(model.name, ref, "ref")
            for source in model.sources:
                if source not in given:
                    raise MissingRelation(model.name, source, "source")
            for var in model.vars:
                if var not in var_names:
                    raise MissingVar(model.name, var)
        return plan

    def run(
        self,
        con: duckdb.DuckDBPyConnection,
        models: Sequence[str],
        relations: Mapping[str, Relation],
        vars: Mapping[str, VarValue],
        with_ancestors: bool = False,
    ) -> dict[str, pa.Table]:
        """Run ``models`` (and, ``with_ancestors``, the models they read that are not given).

        Each ref or source in ``relations`` is read from that Arrow object, exposed in DuckDB
        as ``<schema>.<name>``; each model run becomes the DuckDB table ``<schema>.<name>``.
        Returns the selected models' tables, in the order of ``models``. Sets the
        connection's ``TimeZone`` to UTC, so TIMESTAMPTZ comes back as ``timestamp[us, UTC]``.
        """
        plan = self.plan(models, relations.keys(), vars.keys(), with_ancestors)
        return runner.run_plan(con, plan, models, relations, vars)


def _sql_files(
    folder: Traversable, parts: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], Traversable]]:
    """Every ``.sql`` file under ``folder`` with its path parts, sorted by name."""
    for entry in sorted(folder.iterdir(), key=lambda entry: entry.name):
        if entry.is_dir():
            yield from _sql_files(entry, (*parts, entry.name))
        elif entry.name.endswith(".sql"):
            yield (*parts, entry.name), entry


def _topological_order(models: Mapping[str, Model]) -> tuple[str, ...]:
    """Kahn's algorithm; among the models ready at once the smallest name goes first."""
    for name in sorted(models):
        for ref in models[name].refs:
            if ref not in models:
                raise MissingRef(name, ref)
    unresolved = {name: set(model.refs) for name, model in models.items()}
    readers: dict[str, list[str]] = {name: [] for name in models}
    for name, model in models.items():
        for ref in model.refs:
            readers[ref].append(name)
    ready = [name for name, refs in unresolved.items() if not refs]
    heapq.heapify(ready)
    order = []
    while ready:
        name = heapq.heappop(ready)
        order.append(name)
        for reader in readers[name]:
            unresolved[reader].discard(name)
            if not unresolved[reader]:
                heapq.heappush(ready, reader)
    if len(order) < len(models):
        raise RefCycle(_a_cycle({name: refs for name, refs in unresolved.items() if refs}))
    return tuple(order)


def _a_cycle(unresolved: Mapping[str, set[str]]) -> tuple[str, ...]:
    """One cycle among models left with unresolved refs, from its smallest name.

    Every such model still refers to another such model, so following refs from any of them
    must come back to a model already seen.
    """
    path = [min(unresolved)]
    while path.count(path[-1]) == 1:
        path.append(min(unresolved[path[-1]]))
    cycle = path[path.index(path[-1]) :]
    start = cycle.index(min(cycle[:-1]))
    return (*cycle[start:-1], *cycle[:start], cycle[start])
