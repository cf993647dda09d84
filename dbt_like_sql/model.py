"""One SQL model: a SELECT in ``models/<schema>/<name>.sql``, named ``<schema>.<name>``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from dbt_like_sql.errors import MissingVar
from dbt_like_sql.template import Placeholder, Template, parse_template, relation_identifier


@dataclass(frozen=True)
class Model:
    """A parsed model and what it reads; ``refs``, ``sources`` and ``vars`` are in file order."""

    name: str
    path: str
    template: Template
    refs: tuple[str, ...]
    sources: tuple[str, ...]
    vars: tuple[str, ...]

    @staticmethod
    def parse(name: str, path: str, text: str) -> Model:
        """The model ``name`` from the SQL ``text`` of file ``path`` (for error messages)."""
        template = parse_template(text, path)
        placeholders = [segment for segment in template if isinstance(segment, Placeholder)]

        def named(kind: str) -> tuple[str, ...]:
            return tuple(dict.fromkeys(p.name for p in placeholders if p.kind == kind))

        return Model(name, path, template, named("ref"), named("source"), named("var"))

    def render(self, var_literals: Mapping[str, str]) -> str:
        """The model's SQL, refs and sources as ``"schema"."name"``, vars as given literals.

        ``var_literals`` holds SQL literals made by ``sql_literal``, never raw values.
        """
        parts = []
        for segment in self.template:
            if not isinstance(segment, Placeholder):
                parts.append(segment)
            elif segment.kind != "var":
                parts.append(relation_identifier(segment.name))
            elif segment.name in var_literals:
                parts.append(var_literals[segment.name])
            else:
                raise MissingVar(self.name, segment.name)
        return "".join(parts)
