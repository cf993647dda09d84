"""Fixtures the model tests share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from btc_platform_tests.support.redis_server import RedisServer, paused_redis_server


@pytest.fixture
def paused_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server that accepts connections and answers nothing (SIGSTOP)."""
    with paused_redis_server(tmp_path / "paused") as server:
        yield server
