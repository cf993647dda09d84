"""The infer role: every ``cadence_ms``, hot state in, one prediction out, within the deadline.

A tick reads ``feat:{SYM}`` and the last seconds of ``features:{SYM}:{ts}`` in one
pipeline (nothing else: no lake, no bus), lets the fallback controller choose the level
and the input vector, runs the ONNX model and publishes the prediction to ``pred:{SYM}``
and to the predictions capture segment. A Redis read that does not answer in time leaves
the tick on what the controller remembers (level 4 or 5).

Every tick belongs to a cadence boundary, and its latency and ``deadline_ms`` run from that
boundary, so time spent waiting for a busy event loop counts. A tick that wakes past its
deadline, or passes it before publishing, is skipped; boundaries that passed while the loop
was blocked are skipped too, not run late in a burst; all counted in
``btc_ticks_skipped_total{reason}``.

Nothing a tick meets ends the role: a model error is a safe-mode prediction with its reason
(``ServingModel`` counts it and, after enough in a row, serves the previous version), and
anything unforeseen is counted in ``btc_tick_errors_total``, logged with its traceback, and
the next boundary ticks as usual.

Time: feature ages are measured on the exchange's clock, estimated from the features
role's own stamp (the newest exchange time it had seen, and its wall clock then), so a
market whose clock differs from this host's (the local exchange replays 2026-01-01) ages
correctly. Models are re-read from the pointer in a thread every ``model_poll_s``.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from realtime.clock import Clock, SystemClock
from realtime.inference.fallback import (
    FallbackController,
    FallbackDecision,
    FallbackLevel,
    FallbackSettings,
    LatestVector,
    TickInputs,
)
from realtime.inference.prediction import Prediction
from realtime.inference.serving_model import ModelFailed, NoModelServing, ServingModel
from realtime.inference.store import BundleStore
from realtime.service import cadence
from realtime.service.metrics import Metrics
from realtime.service.settings import RealtimeSettings
from realtime.state import hot_state
from realtime.state.keys import PREDICTIONS_MAXLEN, Keys

log = logging.getLogger(__name__)

HISTORY_SECONDS = 12
"""Per-second vectors read with each tick: enough to repair anything ``stale_ms`` accepts."""
SKIP_REASONS = ("late_start", "deadline", "missed")
"""``btc_ticks_skipped_total`` reasons: woke past the deadline, passed it before publishing,
a boundary that passed while the loop was busy."""


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
        clock: Clock | None = None,
    ) -> None:
        """``clock`` schedules the ticks and times them (wall and monotonic); tests drive it."""
        self.clock = clock or SystemClock()
        self.settings = settings
        self.keys = Keys(settings.symbol)
        self.client = client
        self.metrics = metrics
        self.model = model or ServingModel(
            BundleStore.open(settings.model_store_location),
            settings.symbol,
            Path(settings.data_dir) / "model-cache",
            metrics,
            failures_before_fallback=settings.model_failures_before_fallback,
            clock=self.clock.monotonic,
        )
        self.capture = capture
        for reason in SKIP_REASONS:  # every series exists from the start, at 0
            metrics.ticks_skipped.labels(reason=reason)
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
        """Tick on every cadence boundary until cancelled; only cancellation ends it."""
        poller = asyncio.create_task(self._poll_model(), name="model-poller")
        cadence_ms = self.settings.cadence_ms
        scheduled_ms = cadence.first_boundary_after(self.clock.time(), cadence_ms)
        try:
            while True:
                await self.clock.sleep(scheduled_ms / 1000 - self.clock.time())
                woke_s = self.clock.time()
                wake = cadence.on_wake(scheduled_ms, woke_s, cadence_ms)
                if wake.due_ms is not None:
                    self.metrics.tick_wake_lag.observe(max(0.0, woke_s - scheduled_ms / 1000))
                    if wake.missed:
                        self._skip_missed(wake.missed)
                    await self._tick_guarded(wake.due_ms / 1000)
                scheduled_ms = wake.next_ms
        finally:
            poller.cancel()

    async def _tick_guarded(self, scheduled_s: float) -> None:
        # CancelledError is no Exception: stopping the role still works.
        try:
            await self.tick(scheduled_s)
        except Exception as error:
            self.metrics.tick_errors.labels(error=type(error).__name__).inc()
            log.exception(
                "tick failed; the next boundary ticks as usual",
                extra={"scheduled_s": scheduled_s, "error": repr(error)},
            )

    async def _poll_model(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.model.refresh)
            except Exception:  # refresh counts what it foresees; this keeps polling after a bug
                log.exception("model refresh failed; polling goes on")
            await asyncio.sleep(self.settings.model_poll_s)

    async def tick(self, scheduled_s: float | None = None) -> Prediction | None:
        """The tick of boundary ``scheduled_s`` (epoch s; default: now); ``None`` if skipped.

        Latency and ``deadline_ms`` run from ``scheduled_s``: a tick that starts past the
        deadline is skipped at once, one that passes it before publishing is skipped there.
        """
        clock = self.clock
        woke_s = clock.time()
        if scheduled_s is None:
            scheduled_s = woke_s
        late_s = max(0.0, woke_s - scheduled_s)
        # One timeline for the whole tick, starting at the boundary: the monotonic clock's
        # reading then, however long the loop took to get here.
        started = clock.monotonic() - late_s
        deadline_s = self.settings.deadline_ms / 1000
        self.ticks += 1
        if late_s > deadline_s:
            return self._skip(late_s, "late_start")
        tick_wall_us = round(woke_s * 1_000_000)
        hot_reachable = True
        latest: hot_state.LatestFeatures | None = None
        history: dict[int, tuple[float, ...]] = {}
        try:
            latest, history = await asyncio.wait_for(
                self._read(tick_wall_us), timeout=max(deadline_s * 0.8 - late_s, 0.001)
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
            try:
                yhat, version = self.model.predict_versioned(decision.model_input)
            except NoModelServing:
                level, reason = FallbackLevel.SAFE_MODE, f"no model loaded; {reason}"
            except ModelFailed as failure:  # counted and logged by the serving model
                version, level = failure.version, FallbackLevel.SAFE_MODE
                reason = f"safe mode: {failure}; {reason}"
        elapsed_s = clock.monotonic() - started
        if elapsed_s > deadline_s:
            return self._skip(elapsed_s, "deadline")
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
        await self._publish(prediction, deadline_s - (clock.monotonic() - started))
        elapsed_s = clock.monotonic() - started
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

    def _skip(self, elapsed_s: float, reason: str) -> None:
        self.skipped += 1
        self.metrics.ticks_skipped.labels(reason=reason).inc()
        log.warning(
            "tick skipped: deadline passed",
            extra={"elapsed_ms": elapsed_s * 1000, "reason": reason},
        )
        return None

    def _skip_missed(self, boundaries: int) -> None:
        self.skipped += boundaries
        self.metrics.ticks_skipped.labels(reason="missed").inc(boundaries)
        log.warning(
            "cadence boundaries passed without a tick (event loop blocked or a tick overran)",
            extra={"missed": boundaries},
        )

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
