"""``btc-models`` against a real model store, a real SQLite catalog and private Redis servers.

Redis down or paused never hangs it and never leaves the pointer and the registry
disagreeing; a crash between steps is repaired by the next command; a rolled-back version
comes back only when forced, with the reason recorded.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("pyiceberg", reason="the batch extra is not installed")

import redis

from btc_platform.lakehouse.catalog import open_catalog
from btc_platform.ml.cli import main
from btc_platform.ml.pointer import ModelPointer, advance
from btc_platform.ml.store import ModelStore
from btc_platform.settings import LakehouseSettings
from btc_platform_tests.btc_platform.ml.registered import (
    NOW,
    SYMBOL,
    register,
    stages,
)
from btc_platform_tests.support.redis_server import free_port
from realtime.state.keys import Keys

CLI_TIMEOUT_S = 120.0
"""Far beyond any run of the command: reaching it means it hung."""


@dataclass
class Lake:
    catalog: object
    store: ModelStore
    bundles: Path
    environment: dict[str, str]
    """The ``BTC_*`` variables of this lake (for a ``btc-models`` subprocess)."""

    def register(self, version: str, *, promotable: bool = True) -> None:
        register(self.catalog, self.store, self.bundles, version, promotable)


@pytest.fixture
def lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_server) -> Lake:
    environment = {
        "BTC_DATA_DIR": str(tmp_path / "lake"),
        "BTC_MODEL_STORE": str(tmp_path / "models"),
        "BTC_SYMBOL": SYMBOL,
        "BTC_REDIS_URL": redis_server.url.removesuffix("/0") + "/5",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    catalog = open_catalog(LakehouseSettings(data_dir=tmp_path / "lake"))
    store = ModelStore.open(str(tmp_path / "models"))
    redis.Redis.from_url(environment["BTC_REDIS_URL"]).flushdb()
    return Lake(catalog, store, tmp_path / "bundles", environment)


@pytest.fixture
def redis_down(monkeypatch: pytest.MonkeyPatch) -> str:
    """A Redis URL where nothing listens (connections are refused)."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    monkeypatch.setenv("BTC_REDIS_URL", url)
    return url


def production_key(url: str) -> bytes | None:
    client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=10)
    try:
        return client.get(Keys(SYMBOL).model_current)
    finally:
        client.close()


def test_promote_with_redis_down_commits_pointer_and_registry_and_says_redis_missed_it(
    lake, redis_down, capsys
):
    lake.register("v1")
    assert main(["promote", "v1"]) == 0
    assert lake.store.read_pointer(SYMBOL).production == "v1"
    assert stages(lake.catalog) == {"v1": "production"}
    error = capsys.readouterr().err
    assert "Redis" in error
    assert "reconcile" in error


def test_promote_with_redis_paused_finishes_and_commits(lake, paused_redis):
    lake.register("v1")
    result = subprocess.run(
        [sys.executable, "-m", "btc_platform.ml.cli", "promote", "v1"],
        env={**os.environ, **lake.environment, "BTC_REDIS_URL": paused_redis.url},
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Redis" in result.stderr
    assert lake.store.read_pointer(SYMBOL).production == "v1"
    assert stages(lake.catalog) == {"v1": "production"}


def test_reconcile_copies_the_pointer_to_a_redis_that_missed_the_promotion(
    lake, redis_down, monkeypatch
):
    lake.register("v1")
    assert main(["promote", "v1"]) == 0
    assert main(["reconcile"]) == 3  # Redis is still down: said, and not zero
    monkeypatch.setenv("BTC_REDIS_URL", lake.environment["BTC_REDIS_URL"])
    assert main(["reconcile"]) == 0
    assert production_key(lake.environment["BTC_REDIS_URL"]) == b"v1"


def test_a_rolled_back_version_is_promoted_again_only_when_forced_with_a_reason(lake, capsys):
    for version in ("v1", "v2"):
        lake.register(version)
        assert main(["promote", version]) == 0
    assert main(["rollback"]) == 0
    capsys.readouterr()

    assert main(["promote", "v2"]) == 1
    assert "rolled back" in capsys.readouterr().err
    assert lake.store.read_pointer(SYMBOL).production == "v1"
    assert stages(lake.catalog) == {"v1": "production", "v2": "retired"}

    assert main(["promote", "v2", "--force", "fixed the feed that fooled it"]) == 0
    pointer = lake.store.read_pointer(SYMBOL)
    assert pointer.production == "v2"
    assert pointer.history[-1]["forced"] == "fixed the feed that fooled it"
    assert stages(lake.catalog) == {"v1": "retired", "v2": "production"}
    assert production_key(lake.environment["BTC_REDIS_URL"]) == b"v2"


def test_a_crash_after_the_pointer_write_is_repaired_by_the_next_promotion(lake):
    lake.register("v1")
    lake.register("v2")
    # What a crash right after the pointer's replace leaves: the registry and Redis not told.
    pointer = ModelPointer(SYMBOL)
    for _ in range(3):
        pointer = advance(pointer, "v1", promotable=True, now=NOW)
    lake.store.write_pointer(pointer)

    assert main(["promote", "v2", "--through", "canary"]) == 0
    assert stages(lake.catalog) == {"v1": "production", "v2": "canary"}
    assert production_key(lake.environment["BTC_REDIS_URL"]) == b"v1"


def test_an_unreadable_pointer_is_a_message_and_a_nonzero_exit_not_a_traceback(lake, capsys):
    lake.register("v1")
    pointer_file = Path(lake.environment["BTC_MODEL_STORE"]) / SYMBOL / "current.json"
    pointer_file.parent.mkdir(parents=True, exist_ok=True)
    pointer_file.write_bytes(b'{"symbol": "BTCUSDT", "production": "../x"}')
    assert main(["promote", "v1"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("btc-models: ")
    assert "current.json" in error
    assert stages(lake.catalog) == {"v1": "candidate"}


REDIS_PASSWORD = "redis-password-that-must-never-be-printed"


@pytest.mark.parametrize(
    ("environment", "named"),
    [
        ({"BTC_REDIS_URL": f"redis://:{REDIS_PASSWORD}@redis:6379/0"}, "BTC_REDIS_URL"),
        ({"BTC_SYMBOL": "../etc"}, "BTC_SYMBOL"),
        ({"BTC_ENV": "prod", "BTC_REDIS_PASSWORD": REDIS_PASSWORD}, "BTC_REDIS_URL"),
    ],
    ids=["password-in-url", "bad-symbol", "prod-plain-redis"],
)
@pytest.mark.parametrize("command", [["status"], ["rollback"]])
def test_a_refused_setting_is_one_line_naming_it_and_exit_1(
    lake, monkeypatch, capsys, tmp_path, environment, named, command
):
    if environment.get("BTC_ENV") == "prod":  # a named lake, so only Redis is refused
        monkeypatch.setenv("BTC_CATALOG_KIND", "sql")
        monkeypatch.setenv("BTC_CATALOG_URI", f"sqlite:///{tmp_path / 'lake' / 'catalog.db'}")
        monkeypatch.setenv("BTC_WAREHOUSE", (tmp_path / "lake" / "warehouse").as_uri())
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    assert main(command) == 1

    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"btc-models: {named}: ")
    assert REDIS_PASSWORD not in captured.err
