"""The code location's resources. Each field left empty is filled from the ``BTC_*``
environment (``LakehouseSettings``) when the resource is built for a run, so importing the
code location decides nothing about the environment.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import redis
from dagster_aws.s3 import S3Resource
from pydantic import Field, PrivateAttr
from pyiceberg.catalog import Catalog

from btc_platform.lakehouse.bronze_fetch import AggTradeFetcher
from btc_platform.lakehouse.catalog import open_catalog
from btc_platform.ml.store import ModelStore
from btc_platform.settings import LakehouseSettings
from realtime.binance.archive import ArchiveClient
from realtime.binance.rate_budget import RateBudget
from realtime.binance.rest import BinanceRestClient
from realtime.shared_settings import check_redis_url
from realtime.state.redis_connection import RedisConnection

REDIS_TIMEOUT_S = 10.0
"""Connect and per-command timeout of the lake's Redis client."""


class LakehouseResource(dg.ConfigurableResource):
    """The Iceberg catalog (SQLite + local files by default; Glue, REST or SQL + S3 in prod).

    S3 access (endpoint, region, keys) comes from the nested dagster-aws ``S3Resource``.
    """

    env: str | None = None
    data_dir: str | None = None
    catalog_kind: str | None = None
    catalog_uri: str | None = None
    warehouse: str | None = None
    symbol: str | None = None
    s3: S3Resource = Field(default_factory=S3Resource)

    _catalog: Catalog | None = PrivateAttr(default=None)

    def settings(self) -> LakehouseSettings:
        """The settings: this resource's fields over the environment's."""
        given = {
            name: value
            for name in ("env", "data_dir", "catalog_kind", "catalog_uri", "warehouse", "symbol")
            if (value := getattr(self, name)) is not None
        }
        return LakehouseSettings(**given)

    def catalog(self) -> Catalog:
        """The catalog, opened once per resource instance."""
        if self._catalog is None:
            self._catalog = open_catalog(self.settings(), self.s3_properties())
        return self._catalog

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        """Close the SQL catalog's connections here, on the run's thread: SQLite refuses to
        be closed from whichever thread the garbage collector happens to run on."""
        engine = getattr(self._catalog, "engine", None)
        if engine is not None:
            engine.dispose()
        self._catalog = None

    def s3_properties(self) -> dict[str, str]:
        """pyiceberg FileIO (and Glue client) properties from the S3 resource's settings.

        An endpoint is for S3-compatible stacks (MinIO, LocalStack, moto), which serve Glue
        at the same address; on AWS it stays unset. The region is always passed when known:
        without it pyarrow asks AWS for the bucket's region.
        """
        names = {
            "endpoint_url": ("s3.endpoint", "glue.endpoint"),
            "region_name": ("s3.region", "glue.region"),
            "aws_access_key_id": ("s3.access-key-id", "glue.access-key-id"),
            "aws_secret_access_key": ("s3.secret-access-key", "glue.secret-access-key"),
            "aws_session_token": ("s3.session-token", "glue.session-token"),
        }
        properties: dict[str, str] = {}
        for field, keys in names.items():
            value = getattr(self.s3, field)
            if value:
                properties.update(dict.fromkeys(keys, str(value)))
        return properties


class ModelStoreResource(dg.ConfigurableResource):
    """Model bundles and pointers: ``BTC_MODEL_STORE`` (a path or ``s3://``), S3 access
    from the nested dagster-aws ``S3Resource``."""

    location: str | None = None
    s3: S3Resource = Field(default_factory=S3Resource)

    def store(self) -> ModelStore:
        location = self.location or LakehouseSettings().model_store_location
        options = {
            "endpoint_override": self.s3.endpoint_url,
            "region": self.s3.region_name,
            "access_key": self.s3.aws_access_key_id,
            "secret_key": self.s3.aws_secret_access_key,
        }
        return ModelStore.open(location, {k: v for k, v in options.items() if v})


class BinanceResource(dg.ConfigurableResource):
    """Binance market data over REST and the archive site (or the local exchange: same API).

    The API key is read from ``BTC_BINANCE_API_KEY`` and never shown.
    """

    rest_url: str | None = None
    archive_url: str | None = None
    weight_limit_1m: int | None = None
    data_dir: str | None = None

    _budget: RateBudget | None = PrivateAttr(default=None)

    def settings(self) -> LakehouseSettings:
        given: dict[str, Any] = {}
        if self.data_dir is not None:
            given["data_dir"] = self.data_dir
        if self.weight_limit_1m is not None:
            given["weight_limit_1m"] = self.weight_limit_1m
        return LakehouseSettings(**given)

    def budget(self) -> RateBudget:
        """One request-weight budget for every client this resource makes (per process)."""
        if self._budget is None:
            self._budget = RateBudget(limit=self.settings().weight_limit_1m)
        return self._budget

    @asynccontextmanager
    async def fetcher(self, symbol: str) -> AsyncIterator[AggTradeFetcher]:
        """An aggregate-trade fetcher with open REST and archive clients (inside a loop)."""
        settings = self.settings()
        key = settings.binance_api_key.get_secret_value() if settings.binance_api_key else None
        rest = BinanceRestClient(
            self.rest_url or settings.rest_url, api_key=key, budget=self.budget()
        )
        archive = ArchiveClient(self.archive_url or settings.archive_url)
        async with rest, archive:
            yield AggTradeFetcher(symbol, rest, archive, Path(settings.download_dir))


class RedisResource(dg.ConfigurableResource):
    """The Redis server the live service writes (gap events, hot state).

    The password (``BTC_REDIS_PASSWORD``) and TLS trust (``BTC_REDIS_CA_FILE``) are read from
    the environment only, so they never appear in Dagster's run config.
    """

    url: str | None = None

    def connection(self, settings: LakehouseSettings | None = None) -> RedisConnection:
        """The URL (this resource's, else the settings'), password and TLS trust."""
        settings = settings or LakehouseSettings()
        if self.url is not None:
            # model_copy skips validators: the URL from run config gets the settings' check.
            settings = settings.model_copy(update={"redis_url": check_redis_url(self.url)})
        return settings.redis_connection()

    def client(self) -> redis.Redis:
        """A client whose calls fail within seconds (a sensor tick must not hang on Redis)."""
        connection = self.connection()
        return redis.Redis.from_url(
            connection.url,
            socket_timeout=REDIS_TIMEOUT_S,
            socket_connect_timeout=REDIS_TIMEOUT_S,
            **connection.options(),
        )
