"""When the infer loop ticks: on the cadence's boundaries of the wall clock, never in a burst.

Pure arithmetic on integer milliseconds; boundaries are multiples of the cadence since the
epoch. The loop sleeps to a boundary; when it wakes, ``on_wake`` says which boundary is due
(the newest one passed), how many passed without a tick (the event loop was blocked or a
tick overran: they are counted, never run late one after another) and where to sleep next.
The work per wake is constant however far the clock moved. A wall clock stepped back
re-anchors on the next boundary instead of sleeping until the old one.
"""

from __future__ import annotations

from typing import NamedTuple

US_PER_MS = 1000


class Wake(NamedTuple):
    due_ms: int | None
    """The boundary to tick for now; ``None`` when the loop woke before the one it slept to."""
    missed: int
    """Boundaries from the one slept to up to ``due_ms`` (excluded) that passed with no tick."""
    next_ms: int
    """The boundary to sleep to next."""


def first_boundary_after(now_s: float, cadence_ms: int) -> int:
    """The first boundary strictly after ``now_s`` (epoch seconds), in epoch ms."""
    return (_ms(now_s) // cadence_ms + 1) * cadence_ms


def on_wake(scheduled_ms: int, now_s: float, cadence_ms: int) -> Wake:
    """What to do on waking at ``now_s`` from a sleep to boundary ``scheduled_ms``."""
    now_ms = _ms(now_s)
    if now_ms < scheduled_ms:
        # Woke early (the loop's monotonic clock and the wall clock drift a little), or the
        # wall clock was stepped back: never sleep longer than to the next boundary.
        return Wake(None, 0, min(scheduled_ms, first_boundary_after(now_s, cadence_ms)))
    due_ms = now_ms - (now_ms - scheduled_ms) % cadence_ms
    return Wake(due_ms, (due_ms - scheduled_ms) // cadence_ms, due_ms + cadence_ms)


def _ms(seconds: float) -> int:
    # Through whole microseconds, so that t + (b - t) landing a hair below b counts as b.
    return round(seconds * 1_000_000) // US_PER_MS
