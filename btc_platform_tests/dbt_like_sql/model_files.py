"""Model directories written for a test: ``schema.name: sql`` becomes ``schema/name.sql``."""

from __future__ import annotations

from pathlib import Path


def write_models(root: Path, models: dict[str, str]) -> Path:
    """Each ``schema.name: sql`` as ``root/schema/name.sql``; returns ``root``."""
    for name, sql in models.items():
        schema, table = name.split(".")
        (root / schema).mkdir(parents=True, exist_ok=True)
        (root / schema / f"{table}.sql").write_text(sql, encoding="utf-8")
    return root


def ref(name: str) -> str:
    """The template text ``{{ ref('name') }}``."""
    return "{{ ref('" + name + "') }}"
