"""One service process: the roles it was asked to run, their Redis clients, and HTTP.

``btc-realtime run`` runs all four roles in one process (one event loop); each role can
also run alone (``btc-realtime ingest`` …) as its own process, since roles talk only through
Redis. Stopping (SIGINT, SIGTERM, or the end of ``--duration``) cancels the roles, flushes
and closes the capture segments, and closes every connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Iterable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from realtime.archive import schemas
from realtime.archive.capture import CaptureWriters
from realtime.archive.role import ArchiveRole, segment_counter
from realtime.bus.writer import BusWriter
from realtime.ingest.ingest import IngestRole
from realtime.service.features_role import FeaturesRole
from realtime.service.http import HttpEndpoints
from realtime.service.infer_role import InferRole
from realtime.service.metrics import Metrics
from realtime.service.settings import RealtimeSettings
from realtime.state import hot_state
from realtime.state.keys import Keys

log = logging.getLogger(__name__)

ROLES = ("ingest", "features", "infer", "archive")
CAPTURE_KINDS = {"archive": schemas.MARKET_KINDS, "infer": (schemas.PREDICTIONS,)}
"""What each role writes to the capture: a process owns the kinds of its roles only, so
``btc-realtime archive`` and ``btc-realtime infer`` can run side by side."""
SHUTDOWN_S = 5.0
"""Each shutdown step gets this long (SIGTERM to SIGKILL is 30 s in Kubernetes)."""


def redis_client(settings: RealtimeSettings) -> aioredis.Redis:
    """A client that fails fast: a role must notice a lost Redis within one tick.

    The password and TLS come from the settings (``BTC_REDIS_PASSWORD``, ``rediss://``,
    ``BTC_REDIS_CA_FILE``); a wrong password is an ``AuthenticationError`` at once.
    """
    connection = settings.redis_connection()
    return aioredis.Redis.from_url(
        connection.url, socket_timeout=2.0, socket_connect_timeout=1.0, **connection.options()
    )


class Service:
    def __init__(
        self,
        settings: RealtimeSettings,
        roles: Iterable[str] = ROLES,
        *,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.roles = tuple(roles)
        unknown = set(self.roles) - set(ROLES)
        if unknown:
            raise ValueError(f"unknown roles {sorted(unknown)}; choose from {ROLES}")
        self.metrics = metrics or Metrics()
        self.keys = Keys(settings.symbol)
        self._clients: list[aioredis.Redis] = []
        self.capture: CaptureWriters | None = None
        self.bus: BusWriter | None = None
        self.ingest: IngestRole | None = None
        self.features: FeaturesRole | None = None
        self.infer: InferRole | None = None
        self.archive: ArchiveRole | None = None
        self.http = HttpEndpoints(
            self.metrics, self.health, settings.metrics_host, settings.metrics_port
        )
        self._build()

    def _client(self) -> aioredis.Redis:
        client = redis_client(self.settings)
        self._clients.append(client)
        return client

    def _build(self) -> None:
        settings, metrics = self.settings, self.metrics
        kinds = dict.fromkeys(kind for role in self.roles for kind in CAPTURE_KINDS.get(role, ()))
        if kinds:
            self.capture = CaptureWriters.from_settings(
                settings, on_segment_closed=segment_counter(metrics), kinds=kinds, metrics=metrics
            )
        if "ingest" in self.roles:
            self.bus = BusWriter(self._client(), self.keys, metrics)
            self.ingest = IngestRole(settings, self.bus, metrics)
        if "features" in self.roles:
            self.features = FeaturesRole(settings, self._client(), metrics)
        if "infer" in self.roles:
            self.infer = InferRole(settings, self._client(), metrics, capture=self.capture)
        if "archive" in self.roles:
            assert self.capture is not None
            self.archive = ArchiveRole(self._client(), self.keys, self.capture, metrics)

    def _tasks(self) -> list[asyncio.Task[Any]]:
        coroutines = {
            "bus-writer": self.bus.run() if self.bus else None,
            "ingest": self.ingest.run() if self.ingest else None,
            "features": self.features.run() if self.features else None,
            "infer": self.infer.run() if self.infer else None,
            "archive": self.archive.run() if self.archive else None,
        }
        return [
            asyncio.create_task(coroutine, name=name)
            for name, coroutine in coroutines.items()
            if coroutine is not None
        ]

    async def run(self, stop: asyncio.Event | None = None, duration_s: float | None = None) -> None:
        """Run until ``stop`` is set, ``duration_s`` passes, or a role fails."""
        stop = stop or asyncio.Event()
        # The ~80k objects made while importing (numpy, onnxruntime, redis, pyarrow) never
        # die; moved out of the collector's reach, a full collection no longer walks them.
        # Measured: full collections of 50-60 ms, about 5 a second, were a quarter of the
        # service's CPU under load (docs/benchmarks.md).
        gc.collect()
        gc.freeze()
        await self.http.start()
        log.info(
            "service started",
            extra={
                "roles": self.roles,
                "symbol": self.settings.symbol,
                "http_port": self.http.port,
            },
        )
        tasks = self._tasks()
        waiter = asyncio.create_task(stop.wait(), name="stop")
        try:
            done, _ = await asyncio.wait(
                [*tasks, waiter], timeout=duration_s, return_when=asyncio.FIRST_COMPLETED
            )
            for task in done:
                if task is not waiter and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            await self._shutdown([*tasks, waiter])
            gc.unfreeze()  # a process that goes on (a test, an embedding) collects them again

    async def _shutdown(self, tasks: list[asyncio.Task[Any]]) -> None:
        """Stop every role within ``SHUTDOWN_S``; whatever is left is named and abandoned."""
        # Roles that block on Redis reads stop by flag: redis-py's asyncio client can swallow
        # a cancellation that lands in a blocking XREAD. The rest are cancelled.
        for role in (self.ingest, self.features, self.archive):
            if role is not None:
                role.stop()
        _, pending = await asyncio.wait(tasks, timeout=1.0)
        for task in pending:
            if task.get_name() not in ("features", "archive", "ingest"):
                task.cancel()
        _, pending = await asyncio.wait(pending, timeout=SHUTDOWN_S)
        for task in pending:
            task.cancel()
        for task in pending:
            log.error("role did not stop in time", extra={"role": task.get_name()})
        if self.bus is not None:
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                await asyncio.wait_for(self.bus.flush(), timeout=SHUTDOWN_S)
        if self.capture is not None:
            self.capture.close()
        await self.http.stop()
        for client in self._clients:
            await client.aclose()
        log.info("service stopped", extra={"roles": self.roles})

    async def health(self) -> dict[str, object]:
        """Ready only with a valid book, fresh features and (with infer here) a loaded model."""
        checks: dict[str, object] = {}
        client = self._clients[0] if self._clients else None
        if client is not None:
            try:
                valid = await client.hget(self.keys.book, "valid")
                fields = await client.hgetall(self.keys.features)
                checks["book"] = {"ok": valid == b"1"}
                age_ms = _feature_age_ms(fields)
                checks["features"] = {
                    "ok": age_ms is not None and age_ms <= self.settings.fresh_ms,
                    "age_ms": age_ms,
                }
            except (RedisError, OSError) as error:
                checks["redis"] = {"ok": False, "error": type(error).__name__}
        if self.infer is not None:
            checks["model"] = {
                "ok": bool(self.infer.model.version),
                "version": self.infer.model.version,
            }
        if self.ingest is not None:
            checks["stream"] = {"ok": self.ingest.connected}
        return checks


def _feature_age_ms(fields: dict[bytes, bytes]) -> int | None:
    if not fields:
        return None
    try:
        latest = hot_state.parse_features(fields)
    except hot_state.MalformedHotState:
        return None
    exchange_now = latest.exchange_time_us + (time.time_ns() // 1000 - latest.written_us)
    return (exchange_now - (latest.ts_sec + 1) * 1_000_000) // 1000
