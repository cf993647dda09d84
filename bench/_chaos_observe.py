"""What the chaos bench watches while it breaks things, and the truth it compares with.

* ``HotStateWatcher`` reads ``ob``, ``feat``, ``tr:1s`` and ``tr:5s`` together all run long
  and counts mixed reads: a hash that is not one whole value (``n_fields`` disagrees), or
  ``feat`` and the trade windows of different seconds (one transaction, or one re-anchor's
  one ``MULTI RENAME``, writes all three; ``btc_platform_tests/realtime/state/test_writer``).
  A key that is absent (Redis restarted, nothing re-anchored yet) is counted apart: that is
  lost state, not a mix.
* ``Recorder`` keeps everything Redis would forget across a restart: every per-second
  vector's ``n_trades_1s`` (as first seen), every prediction, every trade gap announced.
* ``tape_counts`` is the exchange's truth: per second, the trade ids it traded (REST
  aggregate trades, which carry their raw id ranges).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from pathlib import Path

import redis

from realtime.archive.reader import read_segments
from realtime.binance.rest import AggTradePager, BinanceRestClient
from realtime.features.contract import CONTRACT_V1
from realtime.inference.prediction import Prediction
from realtime.state import hot_state
from realtime.state.keys import Keys

N_TRADES_1S = CONTRACT_V1.names.index("n_trades_1s")
US = 1_000_000
MAX_SAMPLES = 10


class HotStateWatcher(threading.Thread):
    """Polls the hot state every ``interval_s`` (not flat out: the machine is shared)."""

    def __init__(self, url: str, keys: Keys, interval_s: float = 0.02) -> None:
        super().__init__(name="hot-state-watcher", daemon=True)
        self.client = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=0.5)
        self.keys = (keys.book, keys.features, keys.trade_stats("1s"), keys.trade_stats("5s"))
        self.interval_s = interval_s
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.samples: list[str] = []

    def run(self) -> None:
        while not self.stopping.wait(self.interval_s):
            try:
                pipe = self.client.pipeline(transaction=False)
                for key in self.keys:
                    pipe.hgetall(key)
                values = pipe.execute()
            except (redis.RedisError, OSError):
                self._count("errors")
                continue
            self._check(values)

    def _check(self, values: list[dict[bytes, bytes]]) -> None:
        problems = []
        names = ("ob", "feat", "tr:1s", "tr:5s")
        for name, fields in zip(names, values, strict=True):
            if fields and not hot_state.is_complete(fields):
                problems.append(f"{name} partial: {sorted(fields)[:4]}")
        seconds = {fields.get(b"ts") for fields in values[1:] if fields}
        if len(seconds) > 1:
            problems.append(f"feat/tr of different seconds: {sorted(seconds)}")
        with self.lock:
            self.counts["reads"] += 1
            if not all(values):
                self.counts["absent"] += 1
            if problems:
                self.counts["mixed"] += 1
                if len(self.samples) < MAX_SAMPLES:
                    self.samples.append("; ".join(problems))

    def _count(self, name: str) -> None:
        with self.lock:
            self.counts[name] += 1

    def snapshot(self) -> Counter[str]:
        with self.lock:
            return Counter(self.counts)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=10)
        self.client.close()


class Recorder:
    """What the service left in Redis, gathered before a restart can wipe it."""

    def __init__(self, url: str, keys: Keys) -> None:
        self.url = url
        self.keys = keys
        self.first_second: int | None = None
        """Vectors are read from this second on (set when the first fault starts)."""
        self.n_trades: dict[int, int] = {}
        self.predictions: dict[int, Prediction] = {}
        self.trade_gaps: set[tuple[int, int]] = set()
        self.errors = 0

    def collect(self, until_second: int) -> None:
        """Read what is there now; vectors of ``first_second..until_second`` only."""
        client = redis.Redis.from_url(self.url, socket_timeout=5.0, socket_connect_timeout=1.0)
        try:
            self._vectors(client, until_second)
            for _, fields in client.xrevrange(self.keys.predictions, count=2000):
                prediction = Prediction.from_fields(fields)
                self.predictions[prediction.tick_time_us] = prediction
            for _, fields in client.xrevrange(self.keys.gaps, count=2000):
                if fields.get(b"kind") != b"trade":
                    continue
                try:
                    self.trade_gaps.add((int(fields[b"first_id"]), int(fields[b"last_id"])))
                except (KeyError, ValueError):
                    continue  # the poison entries the bench itself wrote
        except (redis.RedisError, OSError):
            self.errors += 1
        finally:
            client.close()

    def _vectors(self, client: redis.Redis, until_second: int) -> None:
        # By name, never by SCAN: a service that believed a far-future time may have written
        # millions of per-second keys, and the bench must stay bounded whatever it did.
        if self.first_second is None:
            return
        seconds = range(self.first_second, until_second + 1)
        for start in range(0, len(seconds), 500):
            chunk = seconds[start : start + 500]
            payloads = client.mget([self.keys.features_at(second) for second in chunk])
            for second, payload in zip(chunk, payloads, strict=True):
                if payload is None:
                    continue
                try:
                    vector = hot_state.unpack_vector(payload)
                except hot_state.MalformedHotState:
                    continue
                # The first value seen is what readers used; a later rewrite (a restarted
                # process warming up from REST) must not hide what was missing then.
                self.n_trades.setdefault(second, round(vector[N_TRADES_1S]))

    def add_captured_predictions(self, capture_dir: Path, start_us: int, end_us: int) -> int:
        """Predictions the capture holds that Redis never had (made while it was away)."""
        table = read_segments(capture_dir, "predictions", start_us, end_us)
        added = 0
        for row in table.to_pylist():
            tick_us = int(row["tick_time"].timestamp() * US)
            if tick_us in self.predictions:
                continue
            self.predictions[tick_us] = Prediction(
                symbol=row["symbol"],
                ts_sec=row["ts_sec"],
                yhat_log_return_10s=row["yhat_log_return_10s"],
                latency_ms=row["latency_ms"],
                model_version=row["model_version"],
                fallback_level=row["fallback_level"],
                feature_age_ms=row["feature_age_ms"],
                reason=row["reason"],
                tick_time_us=tick_us,
            )
            added += 1
        return added

    def announced(self, trade_id: int) -> bool:
        return any(first <= trade_id <= last for first, last in self.trade_gaps)


def tape_ids_by_second(rest_url: str, symbol: str, start_us: int, end_us: int) -> dict:
    """``{second: [trade ids]}`` the exchange traded in ``[start_us, end_us)``."""

    async def fetch() -> dict[int, list[int]]:
        by_second: dict[int, list[int]] = {}
        async with BinanceRestClient(rest_url) as client:
            pager = AggTradePager(client, symbol, start_time_us=start_us, end_time_us=end_us - 1)
            async for page in pager:
                for agg in page:
                    ids = by_second.setdefault(agg.transact_time_us // US, [])
                    ids.extend(range(agg.first_trade_id, agg.last_trade_id + 1))
        return by_second

    return asyncio.run(fetch())


def captured_trade_ids(capture_dir: Path, start_us: int, end_us: int) -> set[int]:
    """Trade ids in the capture's closed segments with event times in the window."""
    table = read_segments(capture_dir, "trades", start_us, end_us)
    return set(table["trade_id"].to_pylist())


def now_us() -> int:
    return time.time_ns() // 1000
