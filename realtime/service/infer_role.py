"""The infer role: every ``cadence_ms``, hot state in, one prediction out, within the deadline.

A tick reads ``feat:{SYM}`` and the last seconds of ``features:{SYM}:{ts}`` in one
pipeline (nothing else: no lake, no bus), lets the fallback controller choose the level
and the input vector, runs the ONNX model and publishes the prediction to ``pred:{SYM}``
and to the predictions capture segment. A tick that has passed ``deadline_ms`` before it
publishes is skipped and counted; so is a Redis read that does not answer in time (the
tick then runs on what the controller remembers: level 4 or 5).

Time: feature ages are measured on the exchange's clock, estimated from the features
role's own stamp (the newest exchange time it had seen, and its wall clock then), so a
market whose clock differs from this host's (the local exchange replays 2026-01-01) ages
correctly. Models are re-read from the pointer in a thread every ``model_poll_s``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from realtime.inference.fallback import (
    FallbackController,
    FallbackDecision,
    FallbackLevel,
    FallbackSettings,
    LatestVector,
    TickInputs,
)
from realtime.inference.prediction import Prediction
from realtime.inference.serving_model import ServingModel
from realtime.inference.store import BundleStore
from realtime.service.metrics import Metrics
from realtime.service.settings import RealtimeSettings
from realtime.state import hot_state
from realtime.state.keys import PREDICTIONS_MAXLEN, Keys

log = logging.getLogger(__name__)

HISTORY_SECONDS = 12
"""Per-second vectors read with each tick: enough to repair anything ``stale_ms`` accepts."""


class PredictionSink(Protocol):
    """Where predictions go besides Redis (``CaptureWriters``): it needs no Redis."""

    def append_prediction(self, prediction: Prediction) -> None: ...


class InferRole:
    def __init__(
        self,
        settings: RealtimeSettings,
        client: aioredis.Redis,
        metrics: Metrics,
        *,
        model: ServingModel | None = None,
        capture: PredictionSink | None = None,
        wall_us: Callable[[], int] = lambda: time.time_ns() // 1000,
    ) -> None:
        self.settings = settings
        self.keys = Keys(settings.symbol)
        self.client = client
        self.metrics = metrics
        self.model = model or ServingModel(
            BundleStore.open(settings.model_store_location),
            settings.symbol,
            Path(settings.data_dir) / "model-cache",
            metrics,
        )
        self.capture = capture
        self.wall_us = wall_us
        self.controller = FallbackController(
            FallbackSettings(
                fresh_ms=settings.fresh_ms,
                stale_ms=settings.stale_ms,
                lost_max_age_ms=settings.lost_max_age_ms,
            )
        )
        self._exchange_offset_us: int | None = None
        """Exchange time minus wall time, from the last ``feat`` read."""
        self.predictions: list[Prediction] = []
        """Recent predictions (bounded), for the service's summary and health."""
        self.ticks = 0
        self.skipped = 0
        self.last_decision: FallbackDecision | None = None

    async def run(self) -> None:
        poller = asyncio.create_task(self._poll_model(), name="model-poller")
        cadence_s = self.settings.cadence_ms / 1000
        try:
            while True:
                now = time.time()
                await asyncio.sleep(cadence_s - now % cadence_s)  # on the cadence's boundaries
                await self.tick()
        finally:
            poller.cancel()

    async def _poll_model(self) -> None:
        while True:
            await asyncio.to_thread(self.model.refresh)
            await asyncio.sleep(self.settings.model_poll_s)

    async def tick(self) -> Prediction | None:
        """One tick; returns the prediction, or ``None`` when the tick was skipped."""
        started = time.perf_counter()
        tick_wall_us = self.wall_us()
        deadline_s = self.settings.deadline_ms / 1000
        self.ticks += 1
        hot_reachable = True
        latest: hot_state.LatestFeatures | None = None
        history: dict[int, tuple[float, ...]] = {}
        try:
            latest, history = await asyncio.wait_for(
                self._read(tick_wall_us), timeout=max(deadline_s * 0.8, 0.001)
            )
        except (RedisError, OSError, TimeoutError, hot_state.MalformedHotState) as error:
            hot_reachable = not isinstance(error, RedisError | OSError | TimeoutError)
            self.metrics.redis_errors.labels(role="infer").inc()
            log.debug("hot state read failed", extra={"error": repr(error)})
        if latest is not None:
            self._exchange_offset_us = latest.exchange_time_us - latest.written_us
        now_us = tick_wall_us + (self._exchange_offset_us or 0)
        decision = self.controller.decide(
            TickInputs(
                now_us=now_us,
                hot_reachable=hot_reachable,
                latest=LatestVector(latest.ts_sec, latest.vector, latest.flags.book_valid)
                if latest is not None
                else None,
                history=history,
                lake={},
            )
        )
        self.last_decision = decision
        yhat, version, level, reason = None, self.model.version, decision.level, decision.reason
        if decision.model_input is not None:
            if self.model.served is None:
                level, reason = FallbackLevel.SAFE_MODE, f"no model loaded; {reason}"
            else:
                yhat, version = self.model.predict_versioned(decision.model_input)
                if not math.isfinite(yhat):
                    yhat, level = None, FallbackLevel.SAFE_MODE
                    reason = f"model returned {yhat}; {reason}"
        elapsed_s = time.perf_counter() - started
        if elapsed_s > deadline_s:
            return self._skip(elapsed_s, "before publishing")
        prediction = Prediction(
            symbol=self.settings.symbol,
            ts_sec=decision.ts_sec if decision.ts_sec is not None else now_us // 1_000_000 - 1,
            yhat_log_return_10s=yhat,
            latency_ms=elapsed_s * 1000,
            model_version=version,
            fallback_level=int(level),
            feature_age_ms=decision.feature_age_ms if decision.feature_age_ms is not None else -1,
            reason=reason,
            tick_time_us=tick_wall_us,
        )
        await self._publish(prediction, deadline_s - (time.perf_counter() - started))
        elapsed_s = time.perf_counter() - started
        prediction = prediction._replace(latency_ms=elapsed_s * 1000)
        if self.capture is not None:
            self.capture.append_prediction(prediction)
        self.metrics.tick_latency.observe(elapsed_s)
        self.metrics.fallback.labels(level=str(int(level))).inc()
        if decision.feature_age_ms is not None:
            self.metrics.feature_age.set(decision.feature_age_ms / 1000)
        self.predictions.append(prediction)
        del self.predictions[:-10_000]
        return prediction

    def _skip(self, elapsed_s: float, where: str) -> None:
        self.skipped += 1
        self.metrics.ticks_skipped.inc()
        log.warning(
            "tick skipped: deadline passed", extra={"elapsed_ms": elapsed_s * 1000, "at": where}
        )
        return None

    async def _read(
        self, tick_wall_us: int
    ) -> tuple[hot_state.LatestFeatures | None, dict[int, tuple[float, ...]]]:
        expected = (tick_wall_us + (self._exchange_offset_us or 0)) // 1_000_000 - 1
        seconds = list(range(expected - HISTORY_SECONDS + 1, expected + 2))
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.keys.features)
            pipe.mget([self.keys.features_at(ts) for ts in seconds])
            fields, vectors = await pipe.execute()
        latest = hot_state.parse_features(fields) if fields else None
        history = {
            ts: hot_state.unpack_vector(payload)
            for ts, payload in zip(seconds, vectors, strict=True)
            if payload is not None
        }
        return latest, history

    async def _publish(self, prediction: Prediction, budget_s: float) -> None:
        try:
            await asyncio.wait_for(
                self.client.xadd(
                    self.keys.predictions,
                    prediction.to_fields(),
                    maxlen=PREDICTIONS_MAXLEN,
                    approximate=True,
                ),
                timeout=max(budget_s, 0.001),
            )
        except (RedisError, OSError, TimeoutError) as error:
            # The capture segment still gets it; pred:{SYM} misses it while Redis is away.
            self.metrics.redis_errors.labels(role="infer").inc()
            log.debug("prediction not published to Redis", extra={"error": repr(error)})
