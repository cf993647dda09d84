"""The settings both halves read alike: where they run, the symbol, and how to reach Redis.

``RealtimeSettings`` (the service) and ``LakehouseSettings`` (the lake) both extend
``SharedSettings``, so one ``BTC_*`` environment configures both and each check is made once.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from realtime.settings_checks import check_no_password, check_transport, checked_symbol
from realtime.state.redis_connection import RedisConnection

REDIS_URL_SETTING = "BTC_REDIS_URL"
REDIS_PASSWORD_SETTING = "BTC_REDIS_PASSWORD"


class Environment(StrEnum):
    LOCAL = "local"
    PROD = "prod"


def check_redis_url(url: str) -> str:
    """``url`` once it holds no password (that belongs in ``BTC_REDIS_PASSWORD``)."""
    check_no_password(REDIS_URL_SETTING, url, instead=REDIS_PASSWORD_SETTING)
    return url


class SharedSettings(BaseSettings):
    """``BTC_ENV``, ``BTC_SYMBOL`` and the Redis settings, with their checks."""

    model_config = SettingsConfigDict(env_prefix="BTC_", extra="ignore")

    env: Environment = Environment.LOCAL
    symbol: str = "BTCUSDT"
    redis_url: str = "redis://127.0.0.1:6379/0"
    """``rediss://`` for TLS; never with a password in it (``BTC_REDIS_PASSWORD``)."""
    redis_password: SecretStr | None = None
    """Redis ``AUTH``; from a secret, never logged."""
    redis_ca_file: Path | None = None
    """PEM bundle of the CA that signs Redis' certificate; default: the system's."""
    allow_insecure_transport: bool = False
    """With ``BTC_ENV=prod``, accept ``http``, ``ws`` and ``redis`` URLs (a private network)."""

    @field_validator("symbol")
    @classmethod
    def _symbol(cls, value: str) -> str:
        return checked_symbol(value)

    @field_validator("redis_url")
    @classmethod
    def _no_password_in_redis_url(cls, value: str) -> str:
        return check_redis_url(value)

    def redis_connection(self) -> RedisConnection:
        """How to reach Redis. Plain ``redis://`` is refused in prod here, when a client is
        made, rather than at load: a process that never talks to Redis needs no TLS for it."""
        check_transport(
            {REDIS_URL_SETTING: self.redis_url},
            production=self.env is Environment.PROD,
            allow_insecure=self.allow_insecure_transport,
        )
        return RedisConnection(self.redis_url, self.redis_password, self.redis_ca_file)
