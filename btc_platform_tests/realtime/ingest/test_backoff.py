"""Reconnect delays: full jitter under a doubling, capped ceiling; reset by a healthy connection."""

from __future__ import annotations

import random

import pytest

from realtime.ingest.backoff import Backoff


def test_each_delay_is_a_uniform_draw_under_a_ceiling_that_doubles_up_to_the_cap() -> None:
    backoff = Backoff(base_s=0.5, max_s=4.0, rng=random.Random(42))
    expected = random.Random(42)
    ceilings = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    for ceiling in ceilings:
        assert backoff.ceiling_s() == ceiling
        assert backoff.next_delay_s() == expected.uniform(0.0, ceiling)
    assert backoff.attempts == len(ceilings)


def test_delays_stay_within_zero_and_the_cap_after_very_many_attempts() -> None:
    backoff = Backoff(base_s=0.1, max_s=30.0, rng=random.Random(1))
    delays = [backoff.next_delay_s() for _ in range(2000)]
    assert all(0.0 <= d <= 30.0 for d in delays)
    assert max(delays[-100:]) > 15.0  # jittered over the whole range, not pinned low


def test_a_connection_healthy_long_enough_resets_the_attempts_and_a_short_one_does_not() -> None:
    backoff = Backoff(base_s=1.0, max_s=60.0, healthy_after_s=30.0, rng=random.Random(5))
    for _ in range(4):
        backoff.next_delay_s()
    backoff.connection_up_for(29.9)
    assert backoff.ceiling_s() == 16.0
    backoff.connection_up_for(30.0)
    assert backoff.attempts == 0
    assert backoff.ceiling_s() == 1.0


@pytest.mark.parametrize(("base_s", "max_s"), [(0.0, 1.0), (2.0, 1.0), (-1.0, 1.0)])
def test_a_base_outside_zero_to_the_cap_is_refused(base_s: float, max_s: float) -> None:
    with pytest.raises(ValueError, match="base_s"):
        Backoff(base_s=base_s, max_s=max_s)
