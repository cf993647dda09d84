"""Opening the catalog the settings describe: locally, SQLite and a file warehouse."""

from __future__ import annotations

import pytest

pytest.importorskip("pyiceberg", reason="the batch extra is not installed")

from pyiceberg.catalog.sql import SqlCatalog

from btc_platform.lakehouse.catalog import CATALOG_NAME, NAMESPACES, open_catalog
from btc_platform.lakehouse.tables import BRONZE_AGG_TRADES, ensure_table
from btc_platform.settings import CatalogKind, LakehouseSettings, LakeNotConfigured

pytestmark = pytest.mark.usefixtures("clean_environment")


def namespaces(catalog) -> set[str]:
    return {".".join(namespace) for namespace in catalog.list_namespaces()}


def test_the_local_default_is_sqlite_and_a_warehouse_under_the_data_dir(tmp_path):
    data_dir = tmp_path / "lake"  # not there yet
    catalog = open_catalog(LakehouseSettings(data_dir=data_dir))
    assert isinstance(catalog, SqlCatalog)
    assert catalog.name == CATALOG_NAME
    assert (data_dir / "catalog.sqlite").is_file()
    assert (data_dir / "warehouse").is_dir()
    assert namespaces(catalog) == {"bronze", "silver", "gold", "ml"} == set(NAMESPACES)


def test_table_files_land_in_the_local_warehouse(tmp_path):
    catalog = open_catalog(LakehouseSettings(data_dir=tmp_path))
    table = ensure_table(catalog, BRONZE_AGG_TRADES)
    assert table.location() == (tmp_path / "warehouse" / "bronze" / "agg_trades").as_uri()
    assert any((tmp_path / "warehouse" / "bronze").rglob("*.metadata.json"))


def test_a_relative_data_dir_is_resolved_against_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BTC_DATA_DIR", "data")
    open_catalog(LakehouseSettings())
    assert (tmp_path / "data" / "catalog.sqlite").is_file()
    assert (tmp_path / "data" / "warehouse").is_dir()


def test_reopening_finds_the_namespaces_and_tables_already_there(tmp_path):
    settings = LakehouseSettings(data_dir=tmp_path)
    ensure_table(open_catalog(settings), BRONZE_AGG_TRADES)
    reopened = open_catalog(settings)
    assert namespaces(reopened) == set(NAMESPACES)
    assert reopened.table_exists(BRONZE_AGG_TRADES.identifier)


def test_an_explicit_catalog_uri_and_warehouse_replace_the_local_ones(tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.setenv("BTC_CATALOG_URI", f"sqlite:///{elsewhere / 'named.sqlite'}")
    monkeypatch.setenv("BTC_WAREHOUSE", (elsewhere / "files").as_uri())
    data_dir = tmp_path / "lake"
    catalog = open_catalog(LakehouseSettings(data_dir=data_dir))
    table = ensure_table(catalog, BRONZE_AGG_TRADES)
    assert (elsewhere / "named.sqlite").is_file()
    assert table.location().startswith((elsewhere / "files").as_uri())
    assert not (data_dir / "catalog.sqlite").exists()
    assert not (data_dir / "warehouse").exists()


def test_a_rest_catalog_without_its_uri_is_refused(tmp_path):
    settings = LakehouseSettings(data_dir=tmp_path, catalog_kind=CatalogKind.REST)
    with pytest.raises(ValueError, match="BTC_CATALOG_URI"):
        open_catalog(settings)


def test_prod_without_a_named_lake_refuses_to_open_rather_than_write_locally(tmp_path, monkeypatch):
    monkeypatch.setenv("BTC_ENV", "prod")
    monkeypatch.setenv("BTC_CATALOG_KIND", "sql")
    data_dir = tmp_path / "lake"
    with pytest.raises(LakeNotConfigured, match="BTC_WAREHOUSE"):
        open_catalog(LakehouseSettings(data_dir=data_dir))
    assert not data_dir.exists()
