"""The clocks: the virtual one moves only when slept on, and records every sleep."""

from __future__ import annotations

import asyncio
import time

import pytest

from realtime.clock import Clock, SystemClock, VirtualClock


async def test_virtual_sleep_advances_both_clocks_and_records(monkeypatch):
    clock = VirtualClock(1_000.0, monotonic_start=5.0)
    real_sleeps: list[float] = []
    yield_once = asyncio.sleep

    async def recording_sleep(seconds: float) -> None:
        real_sleeps.append(seconds)
        await yield_once(0)

    # No real waiting, seen without timing it: every real sleep it asks for is a bare yield.
    monkeypatch.setattr(asyncio, "sleep", recording_sleep)
    await clock.sleep(3600.0)
    await clock.sleep(0.25)
    await clock.sleep(-1.0)  # like asyncio.sleep: no wait, and the clock never goes back
    monkeypatch.undo()

    assert real_sleeps == [0, 0, 0]  # one yield to the loop per sleep, nothing longer
    assert clock.time() == 1_000.0 + 3600.25
    assert clock.monotonic() == 5.0 + 3600.25
    assert clock.sleeps == [3600.0, 0.25, -1.0]
    assert clock.slept == 3600.25


def test_virtual_time_stands_still_without_sleeps():
    clock = VirtualClock()
    assert clock.time() == clock.time() == 1_700_000_000.0
    clock.advance(2.0)
    assert clock.time() == 1_700_000_002.0
    assert clock.sleeps == []
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1.0)


async def test_virtual_sleep_lets_other_tasks_run():
    clock = VirtualClock()
    seen: list[float] = []

    async def observer() -> None:
        seen.append(clock.monotonic())

    task = asyncio.create_task(observer())
    await clock.sleep(10.0)
    await task
    assert seen == [10.0]


async def test_system_clock_is_the_real_clock():
    clock: Clock = SystemClock()
    # Bracketed by the real clock, so no pause between the reads can fail it.
    before_s = time.time()
    assert before_s <= clock.time() <= time.time()
    before = clock.monotonic()
    await clock.sleep(0)
    assert clock.monotonic() >= before
