"""``/metrics`` (Prometheus text format) and ``/healthz`` (ready or not, and why)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from realtime.service.metrics import Metrics

HealthCheck = Callable[[], Awaitable[dict[str, object]]]
"""Returns named checks; the service is ready when every value is truthy (``ok``)."""


class HttpEndpoints:
    def __init__(self, metrics: Metrics, health: HealthCheck, host: str, port: int) -> None:
        self.metrics = metrics
        self.health = health
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.add_routes([web.get("/metrics", self._metrics), web.get("/healthz", self._healthz)])
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, request: web.Request) -> web.Response:
        checks = await self.health()
        ready = all(bool(value.get("ok")) for value in checks.values() if isinstance(value, dict))
        body = json.dumps({"ready": ready, "checks": checks})
        return web.Response(
            text=body, status=200 if ready else 503, content_type="application/json"
        )
