"""Injectable time: the wall clock, a monotonic clock and sleeping behind one small protocol.

Code that waits (rate budgets, backoff, Retry-After) takes a ``Clock`` so tests can run it on a
``VirtualClock``, where waiting takes no real time and every requested sleep is recorded.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """Wall time, monotonic time and sleep; all in seconds as floats."""

    def time(self) -> float:
        """Seconds since the Unix epoch (UTC); may jump when the system clock is stepped."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin; never goes backwards. Use for durations."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Suspend the calling task for ``seconds`` (non-positive: just yield control)."""
        ...


class SystemClock:
    """The real clocks of the process and ``asyncio.sleep``."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class VirtualClock:
    """A clock for tests: time moves only when someone sleeps (or ``advance`` is called).

    ``sleep(s)`` advances both clocks by ``s`` at once, appends ``s`` to ``sleeps`` and yields
    to the event loop once. Concurrent sleepers therefore add up rather than overlap: this is
    a recorder of waits, not a scheduler.
    """

    def __init__(self, start: float = 1_700_000_000.0, *, monotonic_start: float = 0.0) -> None:
        self._wall = float(start)
        self._monotonic = float(monotonic_start)
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self._wall

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by ``seconds`` (>= 0) without recording a sleep."""
        if seconds < 0:
            raise ValueError(f"a clock cannot go backwards: {seconds}")
        self._wall += seconds
        self._monotonic += seconds

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(max(0.0, seconds))
        # Yield once so that other tasks see the new time, as they would after a real sleep.
        await asyncio.sleep(0)

    @property
    def slept(self) -> float:
        """Total seconds requested by all sleeps so far (negative requests count as zero)."""
        return sum(max(0.0, s) for s in self.sleeps)
