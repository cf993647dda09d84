"""The lakehouse's settings: typed, with local defaults, read from the environment when the
resources are built (never at import time).

``BTC_ENV=local`` (the default) keeps everything on this machine: a SQLite Iceberg catalog
and a file warehouse under ``BTC_DATA_DIR``, the local exchange's URLs. ``BTC_ENV=prod``
requires the catalog and warehouse to be named (Glue, REST or SQL catalog; an ``s3://``
warehouse) and points at Binance unless told otherwise.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from pathlib import Path

from pydantic import Field, SecretStr, model_validator

from realtime.settings_checks import check_transport
from realtime.shared_settings import Environment, SharedSettings

__all__ = ["Environment", "LakehouseSettings"]

BINANCE_REST_URL = "https://api.binance.com"
BINANCE_ARCHIVE_URL = "https://data.binance.vision"
LOCAL_EXCHANGE_URL = "http://127.0.0.1:8765"
"""Where ``btc-sim serve --port 8765`` listens: the local default for REST and archives."""


class LakeNotConfigured(ValueError):
    """Production settings that do not say where the lake is."""


class CatalogKind(StrEnum):
    SQL = "sql"
    GLUE = "glue"
    REST = "rest"


class LakehouseSettings(SharedSettings):
    """Everything the batch side needs to know about where things are (``BTC_*`` variables)."""

    data_dir: Path = Path("data")
    """Local state: the catalog database, the warehouse, downloaded archive files."""
    history_start: dt.date = dt.date(2026, 1, 1)
    """First day of the partitions (UTC)."""

    catalog_kind: CatalogKind | None = None
    """Default: ``sql`` (SQLite under ``data_dir``) locally; required in prod."""
    catalog_uri: str | None = None
    """SQL catalog: a SQLAlchemy URL; REST catalog: its base URL. Unused for Glue."""
    warehouse: str | None = None
    """``file://`` or ``s3://`` location of table files; default ``data_dir/warehouse``."""

    binance_rest_url: str | None = None
    binance_archive_url: str | None = None
    binance_api_key: SecretStr | None = Field(default=None)
    weight_limit_1m: int = 6000
    """Binance's request-weight limit per IP and minute."""

    model_store: str | None = None
    """Where model bundles and pointers live: a path or ``s3://bucket/prefix``; default
    ``data_dir/models``."""

    @model_validator(mode="after")
    def _encrypted_in_prod(self) -> LakehouseSettings:
        check_transport(
            {"BTC_BINANCE_REST_URL": self.rest_url, "BTC_BINANCE_ARCHIVE_URL": self.archive_url},
            production=self.env is Environment.PROD,
            allow_insecure=self.allow_insecure_transport,
        )
        return self

    def check_lake(self) -> None:
        """Refuse to open a production lake that is not named (rather than write locally).

        Checked when the catalog is opened, not when settings load: a process that only
        talks to Binance or Redis needs no lake.
        """
        if self.env is Environment.PROD and (self.catalog_kind is None or not self.warehouse):
            raise LakeNotConfigured(
                "BTC_ENV=prod needs BTC_CATALOG_KIND (glue, rest or sql) and BTC_WAREHOUSE "
                "(an s3:// location)"
            )

    @property
    def rest_url(self) -> str:
        if self.binance_rest_url:
            return self.binance_rest_url
        return BINANCE_REST_URL if self.env is Environment.PROD else LOCAL_EXCHANGE_URL

    @property
    def archive_url(self) -> str:
        if self.binance_archive_url:
            return self.binance_archive_url
        return BINANCE_ARCHIVE_URL if self.env is Environment.PROD else LOCAL_EXCHANGE_URL

    @property
    def model_store_location(self) -> str:
        return self.model_store or str(self.data_dir / "models")

    @property
    def download_dir(self) -> Path:
        return self.data_dir / "downloads"
