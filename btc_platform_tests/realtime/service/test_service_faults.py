"""The service under the failures that break Binance clients, each against the real parts:
the local exchange injecting the fault, a private Redis, the service on its own loop.

After each fault the features the service served are checked against the batch engine
over the exchange's REST history, bit for bit: a lost or doubled trade would change a
count, a volume or a price in some second.

Nothing waits for an amount of time: each step waits for what the fault must lead to (a
counter, a reconnect, a prediction), so a loaded machine only makes a test slower.
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
from btc_platform_tests.support.waiting import wait_until
from realtime.archive.reader import read_segments
from realtime.inference.fallback import FallbackLevel
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


def ready(service: Service) -> bool:
    return e2e.http_json(f"http://127.0.0.1:{service.http.port}/healthz")["ready"]


def wait_ready(service: Service) -> None:
    wait_until(lambda: ready(service), "/healthz to say ready")


def sample(service: Service, name: str, **labels: str) -> float:
    return service.metrics.registry.get_sample_value(name, labels) or 0.0


def trades_received(service: Service) -> float:
    return sample(service, "btc_events_total", stream="trade")


def wait_for_trades_after_now(service: Service, count: int = 20) -> None:
    """Until ingest has ``count`` more trades: a hole before them has been seen by then."""
    before = trades_received(service)
    wait_until(lambda: trades_received(service) >= before + count, f"{count} more trades")


def trade_gaps(client: redis.Redis) -> list[dict]:
    return [f for _, f in client.xrange(KEYS.gaps) if f[b"kind"] == b"trade"]


def missed_trades(client: redis.Redis) -> int:
    return sum(int(f[b"last_id"]) - int(f[b"first_id"]) + 1 for f in trade_gaps(client))


def wait_recovered(service: Service, client: redis.Redis) -> None:
    """Until every trade gap ingest counted is on the bus and backfilled, and none is open."""
    wait_for_trades_after_now(service)

    def recovered() -> bool:
        gaps = sample(service, "btc_gaps_total", kind="trade")
        return (
            len(trade_gaps(client)) == gaps
            and sample(service, "btc_backfilled_trades_total") == missed_trades(client)
            and not service.features.recovering
        )

    wait_until(recovered, "every trade gap on the bus and recovered by id")


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
        wait_until(lambda: service.features.reanchors > anchored, "a re-anchor")
        reads_then = reader.reads
        # Reads before, during and after the swap: a partial state would have been seen.
        wait_until(lambda: reader.reads >= max(200, reads_then + 50), "the reader's reads")
        wait_until(
            lambda: (
                sample(service, "btc_reanchor_duration_seconds_count") >= 1
                and client.hget(KEYS.book, "valid") == b"1"
                and any(fields[b"kind"] == b"depth" for _, fields in client.xrange(KEYS.gaps))
            ),
            "the re-anchor's metric, a valid book and the depth gap on the bus",
        )
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
    assert reads_then > 0
    assert reader.reads >= 200
    assert reader.bad == []
    gap_events = client.xrange(KEYS.gaps)
    assert any(fields[b"kind"] == b"depth" for _, fields in gap_events)
    assert_live_bars_complete(client, exchange)


def test_disconnect_and_server_shutdown_reconnect_without_duplicate_or_missing_trades(
    exchange, client, redis_server, model, tmp_path
):
    with running(exchange, redis_server.url, tmp_path, model) as (service, settings):
        exchange.post_fault({"fault": "server_shutdown"})
        wait_until(
            lambda: sample(service, "btc_reconnects_total", reason="shutdown") >= 1,
            "the handover the shutdown notice asks for",
        )
        exchange.post_fault({"fault": "disconnect"})
        wait_until(
            lambda: (
                sample(service, "btc_reconnects_total", reason="error")
                + sample(service, "btc_reconnects_total", reason="closed")
                >= 1
            ),
            "a reconnect after the disconnect",
        )
        wait_recovered(service, client)
        wait_ready(service)
        shutdowns = sample(service, "btc_reconnects_total", reason="shutdown")
        drops = sample(service, "btc_reconnects_total", reason="error") + sample(
            service, "btc_reconnects_total", reason="closed"
        )
        backfilled = sample(service, "btc_backfilled_trades_total")
    assert shutdowns >= 1
    assert drops >= 1
    assert backfilled == missed_trades(
        client
    )  # every trade the disconnect cost was recovered by id
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
        wait_until(
            lambda: sample(service, "btc_decode_errors_total", error="TruncatedFrame") >= 2,
            "both truncated frames counted",
        )
        wait_recovered(service, client)
        wait_ready(service)
        truncated = sample(service, "btc_decode_errors_total", error="TruncatedFrame")
        backfilled = sample(service, "btc_backfilled_trades_total")
        predictions_before = len(e2e.predictions(client))
        wait_until(
            lambda: len(e2e.predictions(client)) > predictions_before, "a prediction after them"
        )
    assert truncated == 2
    assert backfilled >= 2  # one trade a frame: both lost trades came back by id
    assert_live_bars_complete(client, exchange)


def test_a_redis_restart_is_survived_and_the_fallback_levels_recorded(exchange, model, tmp_path):
    world, version = model
    with RedisServer(tmp_path / "redis") as server:
        settings = e2e.service_settings(
            exchange, server.url, tmp_path / "data", model_store=str(world.root)
        )
        with e2e.service_in_thread(settings) as service:
            wait_ready(service)

            def levels() -> list[int]:
                return [p.fallback_level for p in service.infer.predictions]

            wait_until(lambda: FallbackLevel.FRESH in levels(), "a fresh prediction")
            # Redis stays away until two ticks have served without it, however slow they are.
            port = server.port
            server.stop()
            wait_until(
                lambda: sample(service, "btc_fallback_level_total", level="4") >= 2,
                "two predictions without the hot state",
            )
            server.start(port=port)
            wait_until(
                lambda: (
                    service.features.reanchors >= 1
                    and FallbackLevel.FRESH in levels()[levels().index(4) :]
                ),
                "a re-anchor and a fresh prediction again",
            )
            client = redis.Redis.from_url(server.url)
            wait_until(
                lambda: (
                    client.exists(KEYS.features, KEYS.book) == 2
                    and len(e2e.live_vectors(client)) >= 60
                ),
                "the hot state and its per-second history back in Redis",
            )
            seen = levels()
            lost = sample(service, "btc_fallback_level_total", level="4")
            restored = client.exists(KEYS.features, KEYS.book)
            history = len(e2e.live_vectors(client))
            client.close()
        # After the stop: every prediction made, and every one the segments hold.
        made = [p.fallback_level for p in service.infer.predictions]
        archived = read_segments(
            settings.capture_dir, "predictions", 0, (int(time.time()) + 60) * 1_000_000
        )
    # Fresh, then the hot state lost (served from the last good vector), then fresh again.
    first_lost = seen.index(4)
    assert 1 in seen[:first_lost]
    assert 1 in seen[first_lost:]
    assert lost >= 2
    assert restored == 2
    assert history >= 60  # the re-anchor restored the short per-second history too
    assert archived["fallback_level"].to_pylist() == made  # recorded while Redis was away
    assert set(archived["model_version"].to_pylist()) == {version}


def test_a_corrupted_model_or_pointer_leaves_the_last_good_model_serving(
    exchange, client, redis_server, model, tmp_path
):
    world, good = model

    def load_failures(reason: str) -> float:
        return sample(service, "btc_model_load_failures_total", reason=reason)

    def versions_after_failure(reason: str) -> set[str]:
        """The versions of two predictions made after the model poll refused the change."""
        wait_until(lambda: load_failures(reason) >= 1, f"a model load failure ({reason})")
        made = len(service.infer.predictions)
        wait_until(lambda: len(service.infer.predictions) >= made + 2, "two more predictions")
        return {p.model_version for p in service.infer.predictions[made:]}

    with running(exchange, redis_server.url, tmp_path, model) as (service, _):
        wait_until(
            lambda: any(p.model_version == good for p in service.infer.predictions),
            "a prediction by the good version",
        )
        # From here on: ticks before the first model load or vector may be safe mode.
        before_faults = len(service.infer.predictions)
        corrupt = world.add_version(day=1, bias=0.5)
        onnx = world.root / SYMBOL / corrupt / "model.onnx"
        data = bytearray(onnx.read_bytes())
        data[len(data) // 2] ^= 0x01
        onnx.write_bytes(bytes(data))
        world.promote(corrupt)
        after_bad_model = versions_after_failure("ChecksumMismatch")
        (world.root / SYMBOL / POINTER_FILE).write_text('{"symbol": "BTCUSDT", "production": ')
        after_bad_pointer = versions_after_failure("PointerInvalid")
        fixed = world.add_version(day=2, bias=-0.5)
        world.promote(fixed)
        wait_until(
            lambda: fixed in {p.model_version for p in service.infer.predictions[-1:]},
            "a prediction by the fixed version",
        )
        made = service.infer.predictions[before_faults:]
    assert after_bad_model == {good}
    assert after_bad_pointer == {good}
    # Every prediction came from a good version, the old one until the fix swapped in, and
    # no refused model ever pushed the service into safe mode.
    versions = [p.model_version for p in made]
    swap = versions.index(fixed)
    assert set(versions[:swap]) == {good}
    assert set(versions[swap:]) == {fixed}
    assert FallbackLevel.SAFE_MODE not in {p.fallback_level for p in made}
