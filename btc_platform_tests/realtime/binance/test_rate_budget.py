"""RateBudget on a virtual clock: minute windows, the server header, Retry-After blocks."""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from realtime.binance.rate_budget import RateBudget
from realtime.clock import VirtualClock

MINUTE_START = 1_700_000_040.0  # an exact calendar minute (28_333_334 * 60)


def budget_at(offset_s: float, **kwargs: object) -> tuple[RateBudget, VirtualClock]:
    clock = VirtualClock(MINUTE_START + offset_s)
    return RateBudget(clock, **kwargs), clock  # type: ignore[arg-type]


async def test_acquire_does_not_wait_while_the_minute_has_room():
    budget, clock = budget_at(15.0, limit=100, safety_margin=0.0)
    for _ in range(25):
        await budget.acquire(4)

    assert clock.sleeps == []
    assert budget.stats() == (100, 25, 0, 0.0)


async def test_acquire_waits_for_the_next_calendar_minute_when_full():
    budget, clock = budget_at(15.0, limit=100, safety_margin=0.0)
    for _ in range(25):
        await budget.acquire(4)
    await budget.acquire(4)

    assert clock.sleeps == [45.0]  # to the minute boundary, not 60 s from the first request
    assert clock.time() == MINUTE_START + 60.0
    assert budget.used_weight == 4
    assert (budget.requests, budget.waits, budget.waited_s) == (26, 1, 45.0)


async def test_safety_margin_keeps_part_of_the_limit_free():
    budget, clock = budget_at(0.0)  # defaults: 6000 with a 10 % margin
    assert budget.effective_limit == 5400
    for _ in range(1350):
        await budget.acquire(4)
    assert clock.sleeps == []
    await budget.acquire(4)
    assert clock.sleeps == [60.0]


async def test_a_new_minute_resets_the_count_without_waiting():
    budget, clock = budget_at(50.0, limit=10, safety_margin=0.0)
    await budget.acquire(10)
    clock.advance(10.0)
    await budget.acquire(10)
    assert clock.sleeps == []
    assert budget.used_weight == 10


async def test_server_header_overrides_the_local_count():
    budget, clock = budget_at(0.0, limit=100, safety_margin=0.0)
    await budget.acquire(4)
    budget.observe("90")  # other clients on this IP used weight we did not see
    assert budget.used_weight == 90
    await budget.acquire(10)
    assert clock.sleeps == []
    await budget.acquire(1)
    assert clock.sleeps == [60.0]

    budget.observe(7)  # lower than ours: the server is still authoritative
    assert budget.used_weight == 7
    budget.observe(None)
    budget.observe("not a number")
    assert budget.used_weight == 7


async def test_blocked_until_holds_every_caller():
    budget, clock = budget_at(0.0, limit=None)
    budget.block_for(30.0)
    assert budget.blocked_until == 30.0
    released: list[float] = []

    async def caller() -> None:
        await budget.acquire(1)
        released.append(clock.monotonic())

    await asyncio.gather(*(caller() for _ in range(5)))
    assert len(released) == 5
    assert all(at >= 30.0 for at in released)
    assert clock.sleeps[0] == 30.0


async def test_a_shorter_block_does_not_shorten_a_longer_one():
    budget, clock = budget_at(0.0)
    budget.block_for(120.0)
    budget.block_for(5.0)
    await budget.acquire(1)
    assert clock.sleeps == [120.0]


async def test_disabled_limit_never_waits_for_weight():
    budget, clock = budget_at(0.0, limit=None)
    for _ in range(10_000):
        await budget.acquire(250)
    assert clock.sleeps == []
    assert budget.effective_limit is None


async def test_a_weight_that_can_never_fit_is_refused():
    budget, _ = budget_at(0.0, limit=100, safety_margin=0.5)
    with pytest.raises(ValueError, match="never fit"):
        await budget.acquire(51)


def test_invalid_configuration_is_refused():
    with pytest.raises(ValueError, match="limit"):
        RateBudget(VirtualClock(), limit=0)
    with pytest.raises(ValueError, match="safety_margin"):
        RateBudget(VirtualClock(), safety_margin=1.0)


@settings(max_examples=60, deadline=None)
@given(
    start=st.floats(min_value=0.0, max_value=59.999),
    steps=st.lists(
        st.tuples(st.integers(min_value=1, max_value=40), st.floats(min_value=0.0, max_value=30.0)),
        min_size=1,
        max_size=80,
    ),
)
def test_no_calendar_minute_is_granted_more_than_the_effective_limit(start, steps):
    async def run() -> dict[int, int]:
        budget, clock = budget_at(start, limit=100, safety_margin=0.2)
        granted: dict[int, int] = defaultdict(int)
        for weight, pause_s in steps:
            await budget.acquire(weight)
            granted[math.floor(clock.time() / 60)] += weight
            clock.advance(pause_s)
        return granted

    granted = asyncio.run(run())
    assert max(granted.values()) <= 80
