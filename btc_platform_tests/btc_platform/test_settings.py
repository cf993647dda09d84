"""The lakehouse settings: safe local defaults, environment overrides, prod must name its lake.

The symbol and Redis checks both settings share: ``realtime/test_shared_settings.py``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from btc_platform.settings import (
    BINANCE_ARCHIVE_URL,
    BINANCE_REST_URL,
    LOCAL_EXCHANGE_URL,
    CatalogKind,
    Environment,
    LakehouseSettings,
    LakeNotConfigured,
)
from realtime.settings_checks import InsecureTransport

API_KEY = "k3y-that-must-never-be-printed"


pytestmark = pytest.mark.usefixtures("clean_environment")


def prod(monkeypatch) -> None:
    monkeypatch.setenv("BTC_ENV", "prod")
    monkeypatch.setenv("BTC_CATALOG_KIND", "glue")
    monkeypatch.setenv("BTC_WAREHOUSE", "s3://btc-lake/warehouse")


def test_the_defaults_keep_everything_local():
    settings = LakehouseSettings()
    assert settings.env is Environment.LOCAL
    assert settings.symbol == "BTCUSDT"
    assert settings.data_dir == Path("data")
    assert settings.download_dir == Path("data") / "downloads"
    assert settings.catalog_kind is None
    assert settings.warehouse is None
    assert settings.rest_url == LOCAL_EXCHANGE_URL
    assert settings.archive_url == LOCAL_EXCHANGE_URL
    assert settings.binance_api_key is None
    assert settings.history_start == dt.date(2026, 1, 1)


def test_the_environment_overrides_the_defaults_when_the_settings_are_built(monkeypatch, tmp_path):
    monkeypatch.setenv("BTC_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("BTC_SYMBOL", "ETHUSDT")
    monkeypatch.setenv("BTC_HISTORY_START", "2026-02-03")
    monkeypatch.setenv("BTC_WEIGHT_LIMIT_1M", "1200")
    monkeypatch.setenv("BTC_CATALOG_KIND", "rest")
    settings = LakehouseSettings()
    assert settings.data_dir == tmp_path
    assert settings.download_dir == tmp_path / "downloads"
    assert settings.symbol == "ETHUSDT"
    assert settings.history_start == dt.date(2026, 2, 3)
    assert settings.weight_limit_1m == 1200
    assert settings.catalog_kind is CatalogKind.REST


def test_arguments_take_precedence_over_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("BTC_DATA_DIR", "/somewhere/else")
    assert LakehouseSettings(data_dir=tmp_path).data_dir == tmp_path


def test_an_unknown_catalog_kind_is_refused(monkeypatch):
    monkeypatch.setenv("BTC_CATALOG_KIND", "hive")
    with pytest.raises(ValidationError, match="catalog_kind"):
        LakehouseSettings()


@pytest.mark.parametrize(
    "given",
    [{}, {"BTC_CATALOG_KIND": "glue"}, {"BTC_WAREHOUSE": "s3://btc-lake/warehouse"}],
    ids=["neither", "no warehouse", "no catalog kind"],
)
def test_prod_without_a_named_catalog_and_warehouse_is_refused_a_lake(monkeypatch, given):
    monkeypatch.setenv("BTC_ENV", "prod")
    for name, value in given.items():
        monkeypatch.setenv(name, value)
    settings = LakehouseSettings()  # a process that only talks to Binance needs no lake
    assert settings.rest_url == BINANCE_REST_URL
    with pytest.raises(LakeNotConfigured) as raised:
        settings.check_lake()
    message = str(raised.value)
    assert "BTC_ENV=prod needs BTC_CATALOG_KIND" in message
    assert "BTC_WAREHOUSE" in message


def test_lake_not_configured_is_a_value_error():
    assert issubclass(LakeNotConfigured, ValueError)


def test_a_local_lake_needs_no_names():
    LakehouseSettings().check_lake()  # does not raise


def test_prod_with_its_lake_named_points_at_binance(monkeypatch):
    prod(monkeypatch)
    settings = LakehouseSettings()
    settings.check_lake()  # does not raise
    assert settings.env is Environment.PROD
    assert settings.catalog_kind is CatalogKind.GLUE
    assert settings.warehouse == "s3://btc-lake/warehouse"
    assert settings.rest_url == BINANCE_REST_URL
    assert settings.archive_url == BINANCE_ARCHIVE_URL


@pytest.mark.parametrize("in_prod", [False, True], ids=["local", "prod"])
def test_explicit_urls_override_the_defaults_of_either_environment(monkeypatch, in_prod):
    if in_prod:
        prod(monkeypatch)
    monkeypatch.setenv("BTC_BINANCE_REST_URL", "https://data-api.binance.vision")
    monkeypatch.setenv("BTC_BINANCE_ARCHIVE_URL", "https://mirror.internal:8443")
    settings = LakehouseSettings()
    assert settings.rest_url == "https://data-api.binance.vision"
    assert settings.archive_url == "https://mirror.internal:8443"


@pytest.mark.parametrize(
    ("setting", "url"),
    [
        ("BTC_BINANCE_REST_URL", "http://api.binance.com"),
        ("BTC_BINANCE_ARCHIVE_URL", "http://mirror.internal:8080"),
    ],
    ids=["rest", "archive"],
)
def test_prod_refuses_an_unencrypted_binance_url(monkeypatch, setting, url):
    prod(monkeypatch)
    monkeypatch.setenv("BTC_BINANCE_API_KEY", API_KEY)
    monkeypatch.setenv(setting, url)
    with pytest.raises(InsecureTransport, match=rf"^{setting}: http to ") as raised:
        LakehouseSettings()
    assert "use https://" in str(raised.value)
    assert API_KEY not in str(raised.value)


def test_prod_on_a_named_private_network_may_use_plain_urls(monkeypatch):
    prod(monkeypatch)
    monkeypatch.setenv("BTC_BINANCE_ARCHIVE_URL", "http://mirror.internal:8080")
    monkeypatch.setenv("BTC_REDIS_URL", "redis://redis:6379/0")
    monkeypatch.setenv("BTC_ALLOW_INSECURE_TRANSPORT", "true")
    settings = LakehouseSettings()
    assert settings.archive_url == "http://mirror.internal:8080"
    assert settings.redis_connection().url == "redis://redis:6379/0"


def test_the_api_key_is_a_secret_that_never_shows(monkeypatch):
    monkeypatch.setenv("BTC_BINANCE_API_KEY", API_KEY)
    settings = LakehouseSettings()
    assert isinstance(settings.binance_api_key, SecretStr)
    assert settings.binance_api_key.get_secret_value() == API_KEY
    assert API_KEY not in repr(settings)
    assert API_KEY not in str(settings)
    assert API_KEY not in settings.model_dump_json()
