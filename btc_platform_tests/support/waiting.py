"""Waiting for a condition, never for an amount of time: poll until it holds.

The bound is only a hang guard: generous (a loaded 2-core runner can be many times slower
than a laptop), so a test fails on it only when the awaited thing never happens.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

HANG_GUARD_S = 60.0


def wait_until(
    condition: Callable[[], bool], what: str, *, timeout_s: float = HANG_GUARD_S
) -> None:
    """Return once ``condition()`` holds (polled every 50 ms); fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.05)


async def eventually(
    condition: Callable[[], bool], what: str, *, timeout_s: float = HANG_GUARD_S
) -> None:
    """``wait_until`` for a test on an event loop: polls every 10 ms without blocking it."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        await asyncio.sleep(0.01)
