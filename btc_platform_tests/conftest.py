"""Shared fixtures: a private Redis server and a private Iceberg catalog, both real."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from hypothesis import HealthCheck, settings

from btc_platform_tests.support.redis_server import RedisServer

FIXTURES = Path(__file__).parent / "fixtures"

# Hypothesis fails an example that takes over 200 ms (``deadline``) or data that is slow to
# generate (``too_slow``): both measure the machine, not the code, and a loaded CI runner
# trips them. Property tests assert properties; speed lives in bench/.
settings.register_profile(
    "btc_platform", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("btc_platform")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One private ``redis-server`` per test session, on a free port, stopped at the end."""
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A client of the private server, on an empty database."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def iceberg_catalog(tmp_path: Path):
    """A real pyiceberg SQL catalog on SQLite with a file warehouse, private to the test."""
    pytest.importorskip("pyiceberg", reason="the batch extra is not installed")
    from btc_platform_tests.support.iceberg import sqlite_catalog

    return sqlite_catalog(tmp_path / "lake")


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``BTC_*`` variable of the caller's shell leaks into a test that builds settings."""
    for name in list(os.environ):
        if name.startswith("BTC_"):
            monkeypatch.delenv(name)
