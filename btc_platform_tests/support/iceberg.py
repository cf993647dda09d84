"""A private Iceberg catalog: SQLite for the catalog, a local directory for the warehouse."""

from __future__ import annotations

from pathlib import Path

from pyiceberg.catalog.sql import SqlCatalog


def sqlite_catalog(directory: Path, name: str = "test") -> SqlCatalog:
    """A real pyiceberg ``SqlCatalog`` whose database and data files live under ``directory``."""
    warehouse = directory / "warehouse"
    warehouse.mkdir(parents=True, exist_ok=True)
    return SqlCatalog(
        name,
        uri=f"sqlite:///{directory / 'catalog.sqlite'}",
        warehouse=warehouse.as_uri(),
    )
