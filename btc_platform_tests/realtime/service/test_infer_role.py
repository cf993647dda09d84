"""The infer role against a private ``redis-server``, a model store of real bundles and a real
onnxruntime: a model that fails on live inputs gives safe-mode predictions and then the
previous version, nothing a tick meets ends the role or the service, and ticks are timed
from their cadence boundary on a driven clock (a busy event loop shows as skipped ticks).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

import numpy as np
import pytest
import redis.asyncio as aioredis

pytest.importorskip("onnx", reason="the test models are built with onnx (batch extra)")

from btc_platform_tests.realtime.inference.examples import K
from btc_platform_tests.realtime.inference.model_world import World
from btc_platform_tests.realtime.inference.tiny_model import TRAP_BEYOND, tiny_model
from realtime.archive.capture import CaptureWriters
from realtime.clock import VirtualClock
from realtime.features.contract import CONTRACT_V1
from realtime.inference.fallback import FallbackLevel
from realtime.inference.prediction import Prediction
from realtime.inference.serving_model import QUARANTINED
from realtime.service.infer_role import InferRole
from realtime.service.runner import Service
from realtime.service.settings import RealtimeSettings
from realtime.state.hot_state import FeatureFlags
from realtime.state.keys import Keys
from realtime.state.writer import ClosedSecond, HotState, HotStateWriter

SYMBOL = "BTCUSDT"
KEYS = Keys(SYMBOL)
BOUNDARY_S = 1_767_229_200.0
"""2026-01-01T01:00:00Z: a cadence boundary."""
TRAPPED = 2.5 * TRAP_BEYOND
"""A first model input that every trapped model fails on (its golden rows are near 0)."""
WAIT_S = 30.0
ROOMY_DEADLINE_MS = 60_000
"""For tests of anything but lateness: Redis answers in real time, and on a loaded machine
a read can outlast the 80 ms the default deadline gives it (the tick would then fall back
for a reason that is not under test)."""


@pytest.fixture
async def client(redis_server):
    client = aioredis.Redis.from_url(redis_server.url)
    await client.flushall()
    yield client
    await client.aclose()


@pytest.fixture
def world(tmp_path) -> World:
    return World(tmp_path / "models", tmp_path / "cache")


def settings_for(tmp_path: Path, world: World, **overrides: object) -> RealtimeSettings:
    values: dict[str, object] = {
        "symbol": SYMBOL,
        "data_dir": tmp_path / "data",
        "model_store": str(world.root),
        "metrics_port": 0,
        "deadline_ms": ROOMY_DEADLINE_MS,
    }
    return RealtimeSettings(**(values | overrides))  # type: ignore[arg-type]


def infer_role(
    tmp_path: Path, client: aioredis.Redis, world: World, clock: VirtualClock, **overrides: object
) -> InferRole:
    """The role on ``clock``, serving ``world``'s model, counting into ``world.metrics``."""
    settings = settings_for(tmp_path, world, **overrides)
    return InferRole(settings, client, world.metrics, model=world.serving, clock=clock)


def model_inputs(first: float = 0.5) -> np.ndarray:
    """A live model-input vector like the tiny model's inputs; its first input is ``first``."""
    inputs = tiny_model(K).sample(1, seed=9)[0].astype(np.float64)
    inputs[0] = first
    return inputs


async def publish_features(client: aioredis.Redis, now_s: float, inputs: np.ndarray) -> None:
    """What the features role leaves at ``now_s``: the vector of the last closed second."""
    now_us = round(now_s * 1_000_000)
    vector = np.zeros(len(CONTRACT_V1.names))
    vector[list(CONTRACT_V1.model_input_indices)] = inputs
    second = ClosedSecond(now_us // 1_000_000 - 1, vector.tolist(), FeatureFlags(True, True))
    state = HotState([second], [], None, False, now_us, now_us)
    await HotStateWriter(client, KEYS).write(state)


async def published(client: aioredis.Redis) -> list[Prediction]:
    return [Prediction.from_fields(fields) for _, fields in await client.xrange(KEYS.predictions)]


def sample(world: World, name: str, **labels: str) -> float:
    return world.metrics.registry.get_sample_value(name, labels) or 0.0


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait for ``condition`` (polling: the role runs against a real Redis)."""
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def serving(world: World, *versions: str) -> None:
    """Promote ``versions`` one after the other, each loaded by a poll."""
    for version in versions:
        world.promote(version)
        assert world.serving.refresh()


# --- finding 3: a model error on live inputs ----------------------------------------------


@pytest.mark.parametrize(
    ("trap", "reason"),
    [("raises", "run_error"), ("nan", "non_finite"), ("wide", "output_shape")],
)
async def test_a_model_that_fails_on_live_inputs_gives_a_safe_mode_prediction(
    tmp_path, client, world, trap, reason
):
    good, failing = world.add_version(1, 0.001), world.add_version(2, -0.002, trap=trap)
    serving(world, good, failing)
    clock = VirtualClock(BOUNDARY_S)
    role = infer_role(tmp_path, client, world, clock)
    await publish_features(client, clock.time(), model_inputs(TRAPPED))

    prediction = await role.tick(BOUNDARY_S)

    assert prediction is not None
    assert prediction.fallback_level == FallbackLevel.SAFE_MODE
    assert prediction.yhat_log_return_10s is None
    assert prediction.model_version == failing
    assert f"model {failing} failed ({reason})" in prediction.reason
    assert "fresh: feat vector" in prediction.reason  # what the tick would have used
    assert await published(client) == [prediction]
    assert sample(world, "btc_model_errors_total", reason=reason) == 1.0
    assert sample(world, "btc_fallback_level_total", level="5") == 1.0
    assert world.serving.version == failing  # one failure is not enough to drop it


async def test_after_n_model_errors_in_a_row_the_previous_version_serves_again(
    tmp_path, client, world
):
    good, failing = world.add_version(1, 0.001), world.add_version(2, -0.002, trap="raises")
    serving(world, good, failing)
    clock = VirtualClock(BOUNDARY_S)
    role = infer_role(tmp_path, client, world, clock)
    n = role.settings.model_failures_before_fallback
    assert n == 3

    trapped = model_inputs(TRAPPED)
    levels = []
    for second in range(n + 1):
        await publish_features(client, BOUNDARY_S + second, trapped)
        prediction = await role.tick(BOUNDARY_S + second)
        assert prediction is not None
        levels.append((prediction.fallback_level, prediction.model_version))
        clock.advance(1.0)
    # The previous version's model takes any finite input: level 1 again, with its forecast.
    assert levels == [(5, failing)] * n + [(1, good)]
    assert prediction.yhat_log_return_10s == pytest.approx(
        world.expected(good, trapped.astype(np.float32)), abs=1e-6
    )
    assert sample(world, "btc_model_errors_total", reason="run_error") == n
    assert world.failures(QUARANTINED) == 1.0
    assert (world.info(good), world.info(failing)) == (1.0, 0.0)
    assert world.serving.quarantined == failing

    # The pointer still names the failing version: polls leave it alone.
    fetched = list(world.store.fetches)
    world.clock.now_s += 10_000.0  # past any retry delay
    assert not world.serving.refresh()
    assert world.store.fetches == fetched
    assert world.serving.version == good
    # A pointer that names another version lifts the quarantine.
    newer = world.add_version(3, 0.003)
    world.promote(newer)
    assert world.serving.refresh()
    assert world.serving.version == newer
    assert world.serving.quarantined is None


async def test_a_failing_first_version_keeps_serving_and_recovers_with_its_inputs(
    tmp_path, client, world
):
    only = world.add_version(1, 0.001, trap="raises")
    serving(world, only)
    clock = VirtualClock(BOUNDARY_S)
    role = infer_role(tmp_path, client, world, clock)
    n = role.settings.model_failures_before_fallback

    for second in range(n + 2):
        await publish_features(client, BOUNDARY_S + second, model_inputs(TRAPPED))
        prediction = await role.tick(BOUNDARY_S + second)
        assert prediction is not None
        assert prediction.fallback_level == FallbackLevel.SAFE_MODE
        clock.advance(1.0)
    # Nothing older to serve: it stays (quarantining it would only stop it predicting).
    assert world.serving.version == only
    assert world.failures(QUARANTINED) == 0.0
    normal = model_inputs()
    await publish_features(client, clock.time(), normal)
    prediction = await role.tick(clock.time())
    assert prediction is not None
    assert (prediction.fallback_level, prediction.model_version) == (1, only)
    assert prediction.yhat_log_return_10s == pytest.approx(
        world.expected(only, normal.astype(np.float32)), abs=1e-6
    )


async def test_an_unforeseen_error_in_a_tick_is_counted_and_the_loop_goes_on(
    tmp_path, client, world, caplog
):
    serving(world, world.add_version(1, 0.001))

    async def features_role_writes_again(sleep: int) -> None:
        if sleep == 1:  # between the first tick and the second
            await publish_features(client, BOUNDARY_S + 1, model_inputs())

    clock = SleepsThenWaits(BOUNDARY_S - 0.5, [0.0, 0.0], features_role_writes_again)
    settings = settings_for(tmp_path, world)
    capture = CaptureWriters.from_settings(settings, clock=clock)
    role = InferRole(
        settings, client, world.metrics, model=world.serving, capture=capture, clock=clock
    )
    # A feat hash whose exchange time is ~3e11 years ahead (a flipped bit at its writer):
    # its feature age overflows the capture's int64 column when the prediction is appended.
    await publish_features(client, BOUNDARY_S, model_inputs())
    await client.hset(KEYS.features, "exchange_time_us", str(10**25))

    task = asyncio.create_task(role.run())
    try:
        await asyncio.wait_for(clock.waiting.wait(), WAIT_S)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()  # only cancellation ended it
    capture.close()

    errors = world.metrics.registry.get_sample_value
    assert (errors("btc_tick_errors_total", {"error": "OverflowError"}) or 0.0) + (
        errors("btc_tick_errors_total", {"error": "ArrowInvalid"}) or 0.0
    ) == 1.0
    assert "tick failed; the next boundary ticks as usual" in caplog.text
    assert "Traceback" in caplog.text
    predictions = await published(client)
    assert [p.tick_time_us for p in predictions] == [
        round(BOUNDARY_S * 1e6),
        round((BOUNDARY_S + 1) * 1e6),
    ]
    assert [p.fallback_level for p in predictions] == [FallbackLevel.SAFE_MODE, FallbackLevel.FRESH]


async def test_a_failing_model_does_not_end_the_service_or_its_other_roles(
    tmp_path, redis_server, client, world
):
    serving(world, world.add_version(1, 0.001, trap="raises"))
    settings = settings_for(tmp_path, world, redis_url=redis_server.url, model_poll_s=1.0)

    service = Service(settings, roles=("infer", "archive"))
    infer = service.infer
    assert infer is not None

    async def features_role_writes(sleep: int) -> None:
        if sleep == 0:  # the service's own first poll loads the model before the first tick
            await until(lambda: bool(infer.model.version), "the model loaded")
        await publish_features(client, BOUNDARY_S + sleep, model_inputs(TRAPPED))

    # The infer role on a driven clock: two ticks on their boundaries, whatever the load,
    # then its sleep waits; the archive role and the service run as in production.
    clock = SleepsThenWaits(BOUNDARY_S - 0.5, [0.0, 0.0], features_role_writes)
    infer.clock = clock
    stop = asyncio.Event()
    run = asyncio.create_task(service.run(stop))

    def model_errors() -> float:
        value = service.metrics.registry.get_sample_value(
            "btc_model_errors_total", {"reason": "run_error"}
        )
        return value or 0.0

    await until(lambda: clock.waiting.is_set() or run.done(), "two ticks")
    assert model_errors() == 2.0
    roles = {task.get_name(): task for task in asyncio.all_tasks()}
    alive = {name: not roles[name].done() for name in ("infer", "archive") if name in roles}
    assert not run.done(), run.exception()
    assert alive == {"infer": True, "archive": True}
    assert infer.model.version
    stop.set()
    await asyncio.wait_for(run, WAIT_S)  # stops cleanly, raising nothing
    assert [p.fallback_level for p in await published(client)] == [5, 5]


# --- finding 8: ticks timed from their boundary -------------------------------------------


class SleepsThenWaits(VirtualClock):
    """A virtual clock whose sleeps overrun by the given amounts (a busy event loop), one
    per sleep; after the last, a sleep waits until cancelled and ``waiting`` is set.

    ``before_sleep(n)`` (if given) runs at the start of the ``n``-th sleep (from 0): what
    the rest of the world does between two ticks.
    """

    def __init__(
        self,
        start: float,
        oversleeps: Iterable[float],
        before_sleep: Callable[[int], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(start)
        self.oversleeps = list(oversleeps)
        self.before_sleep = before_sleep
        self.waiting = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        if self.before_sleep is not None:
            await self.before_sleep(len(self.sleeps))
        if not self.oversleeps:
            self.waiting.set()
            await asyncio.Event().wait()
        await super().sleep(seconds)
        self.advance(self.oversleeps.pop(0))


async def test_a_tick_that_starts_150_ms_after_its_boundary_is_skipped_and_counted(
    tmp_path, client, world
):
    serving(world, world.add_version(1, 0.001))
    clock = VirtualClock(BOUNDARY_S + 0.150)
    role = infer_role(tmp_path, client, world, clock, deadline_ms=100)
    await publish_features(client, BOUNDARY_S, model_inputs())

    assert await role.tick(BOUNDARY_S) is None

    assert sample(world, "btc_ticks_skipped_total", reason="late_start") == 1.0
    assert role.skipped == 1
    assert role.predictions == []
    assert await published(client) == []
    # Started at its boundary, the same tick publishes (what it predicts from is not under
    # test here: Redis answers in real time).
    prediction = await role.tick(BOUNDARY_S + 0.150)
    assert prediction is not None
    assert prediction.latency_ms == 0.0
    assert role.predictions == [prediction]


async def test_a_busy_loop_skips_late_and_missed_boundaries_without_a_burst(
    tmp_path, client, world
):
    serving(world, world.add_version(1, 0.001))
    # Sleeps to B, B+1, B+2: on time, 150 ms late, then 2.05 s late (B+2, B+3 pass unseen).
    clock = SleepsThenWaits(BOUNDARY_S - 0.5, oversleeps=[0.0, 0.150, 2.050])
    role = infer_role(tmp_path, client, world, clock, deadline_ms=100)
    await publish_features(client, BOUNDARY_S, model_inputs())

    task = asyncio.create_task(role.run())
    try:
        await asyncio.wait_for(clock.waiting.wait(), WAIT_S)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()

    # B ticked on time; B+1 woke 150 ms late: skipped; B+4 ran 50 ms after its boundary.
    # (What the ticks read from Redis is not under test: it answers in real time.)
    predictions = role.predictions
    assert [p.tick_time_us for p in predictions] == [
        round(BOUNDARY_S * 1e6),
        round((BOUNDARY_S + 4.050) * 1e6),
    ]
    assert [p.latency_ms for p in predictions] == pytest.approx([0.0, 50.0])
    assert sample(world, "btc_ticks_skipped_total", reason="late_start") == 1.0
    assert sample(world, "btc_ticks_skipped_total", reason="missed") == 2.0
    assert sample(world, "btc_ticks_skipped_total", reason="deadline") == 0.0
    assert role.skipped == 3
    assert sample(world, "btc_tick_wake_lag_seconds_count") == 3.0
    assert sample(world, "btc_tick_wake_lag_seconds_sum") == pytest.approx(2.2)
    assert sample(world, "btc_tick_latency_seconds_sum") == pytest.approx(0.05)
