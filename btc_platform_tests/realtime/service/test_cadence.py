"""When the infer loop ticks: the due boundary, the missed ones and the next sleep, for any
wake-up time (on time, early, late, very late, after the wall clock stepped back)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from realtime.service.cadence import Wake, first_boundary_after, on_wake

B_MS = 1_767_229_200_000
"""2026-01-01T01:00:00Z in ms: a boundary of every cadence that divides a minute."""
B = B_MS / 1000


def test_the_first_boundary_is_strictly_after_now():
    assert first_boundary_after(B - 0.5, 1000) == B_MS
    assert first_boundary_after(B, 1000) == B_MS + 1000
    assert first_boundary_after(B + 0.001, 2000) == B_MS + 2000


def test_on_time_and_slightly_late_wakes_tick_for_the_boundary_slept_to():
    assert on_wake(B_MS, B, 1000) == Wake(B_MS, 0, B_MS + 1000)
    assert on_wake(B_MS, B + 0.150, 1000) == Wake(B_MS, 0, B_MS + 1000)
    # A sum of floats landing a hair below the boundary is the boundary.
    assert on_wake(B_MS, (B - 0.3) + 0.3, 1000).due_ms == B_MS


def test_boundaries_passed_while_blocked_are_missed_not_run_in_a_burst():
    assert on_wake(B_MS, B + 2.05, 1000) == Wake(B_MS + 2000, 2, B_MS + 3000)
    assert on_wake(B_MS, B + 3.0, 2000) == Wake(B_MS + 2000, 1, B_MS + 4000)


def test_a_year_long_jump_is_one_wake():
    year_s = 365 * 86_400
    assert on_wake(B_MS, B + year_s + 0.01, 1000) == Wake(
        B_MS + year_s * 1000, year_s, B_MS + year_s * 1000 + 1000
    )


def test_an_early_wake_sleeps_again_and_a_clock_stepped_back_re_anchors():
    assert on_wake(B_MS, B - 0.0004, 1000) == Wake(None, 0, B_MS)
    # An hour back: sleep to the next boundary from now, not for an hour.
    assert on_wake(B_MS, B - 3600.2, 1000) == Wake(None, 0, B_MS - 3_600_000)


@given(
    scheduled=st.integers(0, 10**6).map(lambda k: B_MS + k * 1000),
    offset_us=st.integers(-(10**10), 10**12),
    cadence_ms=st.sampled_from([1000, 1500, 2000]),
)
def test_every_wake_ticks_the_newest_boundary_passed_or_sleeps_at_most_one_cadence(
    scheduled, offset_us, cadence_ms
):
    scheduled -= scheduled % cadence_ms
    now_s = (scheduled * 1000 + offset_us) / 1_000_000
    now_ms = round(now_s * 1_000_000) // 1000
    wake = on_wake(scheduled, now_s, cadence_ms)
    if wake.due_ms is None:
        assert wake.missed == 0
        assert now_ms < wake.next_ms <= now_ms + cadence_ms
        assert wake.next_ms <= scheduled
    else:
        assert wake.due_ms <= now_ms < wake.due_ms + cadence_ms
        assert wake.due_ms == scheduled + wake.missed * cadence_ms
        assert wake.next_ms == wake.due_ms + cadence_ms
    assert wake.next_ms % cadence_ms == 0
