"""Shared set-up of the service's end-to-end tests: exchange, Redis, model store, service.

Everything is real: the local exchange on its own thread speaking Binance's wire formats,
a private ``redis-server``, a model store with a promoted bundle, and the service on its own
event loop, reached only over sockets, Redis and files.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from btc_platform_tests.realtime.inference.model_world import World
from btc_platform_tests.support.exchange_thread import ServedExchange, serve_in_thread
from btc_platform_tests.support.service_thread import service_in_thread
from realtime.inference.prediction import Prediction
from realtime.service.runner import ROLES, Service
from realtime.service.settings import RealtimeSettings
from realtime.sim.exchange import ExchangeConfig
from realtime.sim.market_model import MarketModel, MarketParams
from realtime.state.keys import Keys

SYMBOL = "BTCUSDT"
KEYS = Keys(SYMBOL)
MARKET_START_US = 1_767_225_600_000_000  # 2026-01-01T00:00Z
API_KEY = "local-test-key"


@contextmanager
def local_exchange(history_s: float = 120.0, seed: int = 11) -> Iterator[ServedExchange]:
    params = MarketParams(seed=seed, start_time_us=MARKET_START_US)
    config = ExchangeConfig(speed=1.0, history_s=history_s, weight_limit=None)
    with serve_in_thread(MarketModel(params), config) as exchange:
        yield exchange


def promoted_model(root: Path) -> tuple[World, str]:
    """A model store holding one verified bundle, promoted to production."""
    world = World(root / "models", root / "cache")
    version = world.add_version(day=0, bias=0.0)
    world.promote(version)
    return world, version


def service_settings(
    exchange: ServedExchange, redis_url: str, data_dir: Path, **overrides: object
) -> RealtimeSettings:
    values: dict[str, object] = {
        "symbol": SYMBOL,
        "binance_rest_url": exchange.url,
        "binance_stream_url": exchange.url.replace("http://", "ws://"),
        "binance_api_key": API_KEY,
        "redis_url": redis_url,
        "data_dir": data_dir,
        "model_store": str(data_dir.parent / "models"),
        "metrics_port": 0,
        "model_poll_s": 1.0,
    }
    return RealtimeSettings(**(values | overrides))  # type: ignore[arg-type]


@dataclass
class Observed:
    health: list[dict]
    metrics_text: str


def watch(service: Service, seconds: float, every_s: float = 1.0) -> Observed:
    """Poll ``/healthz`` and ``/metrics`` while the service runs."""
    health: list[dict] = []
    text = ""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(every_s)
        health.append(http_json(f"http://127.0.0.1:{service.http.port}/healthz"))
        with urllib.request.urlopen(
            f"http://127.0.0.1:{service.http.port}/metrics", timeout=5
        ) as reply:
            text = reply.read().decode()
    return Observed(health, text)


def http_json(url: str) -> dict:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return {"status": reply.status, **json.loads(reply.read())}
    except urllib.error.HTTPError as error:  # 503 carries the same JSON body
        return {"status": error.code, **json.loads(error.read())}


def predictions(client: redis.Redis) -> list[Prediction]:
    return [Prediction.from_fields(fields) for _, fields in client.xrange(KEYS.predictions)]


def live_vectors(client: redis.Redis) -> dict[int, bytes]:
    """Every ``features:{SYM}:{ts}`` still in Redis (five minutes of them)."""
    prefix = KEYS.features_at(0)[:-1]
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    values = client.mget(keys)
    return {
        int(key.decode().rsplit(":", 1)[1]): value for key, value in zip(keys, values, strict=True)
    }


__all__ = ["ROLES", "service_in_thread"]
