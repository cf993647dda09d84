"""The service under the failures that break Binance clients, each against the real parts:
the local exchange injecting the fault, a private Redis, the service on its own loop.

After each fault the features the service served are checked against the batch engine
over the exchange's REST history, bit for bit: a lost or doubled trade would change a
count, a volume or a price in some second.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

pytest.importorskip("onnx", reason="the test model is built with onnx (batch extra)")

from btc_platform_tests.realtime.service import e2e
from btc_platform_tests.support.live_parity import mismatches
from btc_platform_tests.support.redis_server import RedisServer
from realtime.archive.reader import read_segments
from realtime.inference.store import POINTER_FILE
from realtime.service.runner import Service
from realtime.service.settings import RealtimeSettings
from realtime.state import hot_state

pytestmark = pytest.mark.slow
SYMBOL = e2e.SYMBOL
KEYS = e2e.KEYS


@pytest.fixture(scope="module")
def exchange():
    with e2e.local_exchange(history_s=120.0, seed=13) as served:
        yield served


@pytest.fixture
def client(redis_server):
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def model(tmp_path):
    return e2e.promoted_model(tmp_path)


@contextmanager
def running(
    exchange, redis_url: str, tmp_path: Path, model
) -> Iterator[tuple[Service, RealtimeSettings]]:
    """The service against ``exchange`` and ``redis_url``, serving ``model``, once ready."""
    world, _ = model
    settings = e2e.service_settings(
        exchange, redis_url, tmp_path / "data", model_store=str(world.root)
    )
    with e2e.service_in_thread(settings) as service:
        wait_ready(service)
        yield service, settings


def wait_ready(service: Service, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        health = e2e.http_json(f"http://127.0.0.1:{service.http.port}/healthz")
        if health["ready"]:
            return
        time.sleep(0.25)
    raise AssertionError(f"not ready after {timeout_s} s: {health}")


def sample(service: Service, name: str, **labels: str) -> float:
    return service.metrics.registry.get_sample_value(name, labels) or 0.0


def assert_live_bars_complete(client: redis.Redis, exchange) -> None:
    differences, compared = mismatches(e2e.live_vectors(client), exchange.url, SYMBOL)
    assert compared >= 60
    assert differences == [], differences[:10]


class HotStateReader(threading.Thread):
    """Reads ``ob``, ``feat`` and ``tr`` as fast as it can; records any missing or partial."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.client = redis.Redis.from_url(url)
        self.stop = threading.Event()
        self.reads = 0
        self.bad: list[str] = []

    def run(self) -> None:
        keys = (KEYS.book, KEYS.features, KEYS.trade_stats("1s"), KEYS.trade_stats("5s"))
        while not self.stop.is_set():
            pipe = self.client.pipeline(transaction=False)
            for key in keys:
                pipe.hgetall(key)
            for key, fields in zip(keys, pipe.execute(), strict=True):
                if not hot_state.is_complete(fields):
                    self.bad.append(f"{key}: {sorted(fields)[:5]}")
            self.reads += 1


def test_dropped_diffs_resync_the_book_and_reanchor_atomically(
    exchange, client, redis_server, model, tmp_path
):
    with running(exchange, redis_server.url, tmp_path, model) as (service, _):
        reader = HotStateReader(redis_server.url)
        reader.start()
        anchored = service.features.reanchors
        exchange.post_fault({"fault": "drop", "stream": "btcusdt@depth", "count": 3})
        deadline = time.monotonic() + 20
        while service.features.reanchors == anchored and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2)
        reader.stop.set()
        reader.join()
        gaps = sample(service, "btc_gaps_total", kind="depth")
        reanchors = service.features.reanchors - anchored
        reanchor_seconds = sample(service, "btc_reanchor_duration_seconds_count")
        book_valid = client.hget(KEYS.book, "valid")
    assert gaps >= 1
    assert reanchors >= 1
    assert reanchor_seconds >= 1
    assert book_valid == b"1"
    assert reader.reads > 200
    assert reader.bad == []
    gap_events = client.xrange(KEYS.gaps)
    assert any(fields[b"kind"] == b"depth" for _, fields in gap_events)
    assert_live_bars_complete(client, exchange)


def test_disconnect_and_server_shutdown_reconnect_without_duplicate_or_missing_trades(
    exchange, client, redis_server, model, tmp_path
):
    with running(exchange, redis_server.url, tmp_path, model) as (service, settings):
        exchange.post_fault({"fault": "server_shutdown"})
        time.sleep(3)
        exchange.post_fault({"fault": "disconnect"})
        time.sleep(4)
        wait_ready(service)
        shutdowns = sample(service, "btc_reconnects_total", reason="shutdown")
        drops = sample(service, "btc_reconnects_total", reason="error") + sample(
            service, "btc_reconnects_total", reason="closed"
        )
        backfilled = sample(service, "btc_backfilled_trades_total")
    assert shutdowns >= 1
    assert drops >= 1
    trade_gaps = [f for _, f in client.xrange(KEYS.gaps) if f[b"kind"] == b"trade"]
    missed = sum(int(f[b"last_id"]) - int(f[b"first_id"]) + 1 for f in trade_gaps)
    assert backfilled == missed  # every trade the disconnect cost was recovered by id
    archived = read_segments(settings.capture_dir, "trades", e2e.MARKET_START_US, 2**53)
    ids = archived["trade_id"].to_pylist()
    assert len(ids) > 20
    assert len(ids) == len(set(ids))  # the stream never delivered a trade twice
    assert_live_bars_complete(client, exchange)


def test_malformed_frames_are_counted_and_skipped_and_their_trades_recovered(
    exchange, client, redis_server, model, tmp_path
):
    with running(exchange, redis_server.url, tmp_path, model) as (service, _):
        exchange.post_fault({"fault": "truncate", "stream": "btcusdt@trade", "count": 2})
        time.sleep(5)
        wait_ready(service)
        truncated = sample(service, "btc_decode_errors_total", error="TruncatedFrame")
        predictions_before = len(e2e.predictions(client))
        time.sleep(2)
        predictions_after = len(e2e.predictions(client))
    assert truncated == 2
    assert predictions_after > predictions_before  # still predicting
    assert_live_bars_complete(client, exchange)


def test_a_redis_restart_is_survived_and_the_fallback_levels_recorded(exchange, model, tmp_path):
    world, version = model
    with RedisServer(tmp_path / "redis") as server:
        settings = e2e.service_settings(
            exchange, server.url, tmp_path / "data", model_store=str(world.root)
        )
        with e2e.service_in_thread(settings) as service:
            wait_ready(service)
            time.sleep(2)
            server.restart(down_s=4)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                time.sleep(0.5)
                last = service.infer.predictions[-1]
                if last.fallback_level == 1 and service.features.reanchors >= 1:
                    break
            time.sleep(2)
            levels = [p.fallback_level for p in service.infer.predictions]
            lost = sample(service, "btc_fallback_level_total", level="4")
            client = redis.Redis.from_url(server.url)
            restored = client.exists(KEYS.features, KEYS.book)
            history = len(e2e.live_vectors(client))
            client.close()
        # After the stop: every prediction made, and every one the segments hold.
        made = [p.fallback_level for p in service.infer.predictions]
        archived = read_segments(
            settings.capture_dir, "predictions", 0, (int(time.time()) + 60) * 1_000_000
        )
    # Fresh, then the hot state lost (served from the last good vector), then fresh again.
    first_lost = levels.index(4)
    assert 1 in levels[:first_lost]
    assert levels[-1] == 1
    assert lost >= 2
    assert restored == 2
    assert history >= 60  # the re-anchor restored the short per-second history too
    assert archived["fallback_level"].to_pylist() == made  # recorded while Redis was away
    assert set(archived["model_version"].to_pylist()) == {version}


def test_a_corrupted_model_or_pointer_leaves_the_last_good_model_serving(
    exchange, client, redis_server, model, tmp_path
):
    world, good = model
    with running(exchange, redis_server.url, tmp_path, model) as (service, _):
        corrupt = world.add_version(day=1, bias=0.5)
        onnx = world.root / SYMBOL / corrupt / "model.onnx"
        data = bytearray(onnx.read_bytes())
        data[len(data) // 2] ^= 0x01
        onnx.write_bytes(bytes(data))
        world.promote(corrupt)
        time.sleep(3)
        after_bad_model = {p.model_version for p in service.infer.predictions[-2:]}
        checksum = sample(service, "btc_model_load_failures_total", reason="ChecksumMismatch")
        (world.root / SYMBOL / POINTER_FILE).write_text('{"symbol": "BTCUSDT", "production": ')
        time.sleep(3)
        after_bad_pointer = {p.model_version for p in service.infer.predictions[-2:]}
        pointer = sample(service, "btc_model_load_failures_total", reason="PointerInvalid")
        fixed = world.add_version(day=2, bias=-0.5)
        world.promote(fixed)
        time.sleep(3)
        after_fix = service.infer.predictions[-1].model_version
        levels = {p.fallback_level for p in service.infer.predictions[-8:]}
    assert after_bad_model == {good}
    assert checksum >= 1
    assert after_bad_pointer == {good}
    assert pointer >= 1
    assert after_fix == fixed  # a good version still swaps in
    assert levels == {1}
