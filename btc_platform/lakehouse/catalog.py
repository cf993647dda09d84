"""Opening the Iceberg catalog the settings describe (pyiceberg 0.12)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.catalog.sql import SqlCatalog

from btc_platform.settings import CatalogKind, LakehouseSettings

CATALOG_NAME = "btc_platform"
NAMESPACES = ("bronze", "silver", "gold", "ml")


def open_catalog(
    settings: LakehouseSettings, s3_properties: Mapping[str, str] | None = None
) -> Catalog:
    """The catalog of ``settings``, with its namespaces created.

    Locally (no kind given) it is a SQLite ``SqlCatalog`` with its warehouse under
    ``settings.data_dir``. ``s3_properties`` are pyiceberg FileIO properties
    (``s3.endpoint``, ``s3.region``, keys) for an ``s3://`` warehouse.
    """
    settings.check_lake()
    kind = settings.catalog_kind or CatalogKind.SQL
    properties: dict[str, str] = dict(s3_properties or {})
    warehouse = settings.warehouse or _local_warehouse(settings.data_dir)
    if kind is CatalogKind.SQL:
        uri = settings.catalog_uri or _local_catalog_uri(settings.data_dir)
        catalog: Catalog = SqlCatalog(CATALOG_NAME, uri=uri, warehouse=warehouse, **properties)
    elif kind is CatalogKind.GLUE:
        catalog = load_catalog(CATALOG_NAME, type="glue", warehouse=warehouse, **properties)
    else:
        if not settings.catalog_uri:
            raise ValueError("a REST catalog needs BTC_CATALOG_URI")
        catalog = load_catalog(
            CATALOG_NAME, type="rest", uri=settings.catalog_uri, warehouse=warehouse, **properties
        )
    for namespace in NAMESPACES:
        catalog.create_namespace_if_not_exists(namespace)
    return catalog


def _local_warehouse(data_dir: Path) -> str:
    warehouse = (data_dir / "warehouse").resolve()
    warehouse.mkdir(parents=True, exist_ok=True)
    return warehouse.as_uri()


def _local_catalog_uri(data_dir: Path) -> str:
    data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(data_dir / 'catalog.sqlite').resolve()}"
