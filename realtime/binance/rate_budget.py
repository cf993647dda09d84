"""The request-weight budget of this process against Binance's per-IP limit (pure logic + clock).

Binance counts ``REQUEST_WEIGHT`` per IP in calendar minutes (6000 a minute since 2023-08-25)
and reports the running total in ``X-MBX-USED-WEIGHT-1M``. Every client in the process must
share one ``RateBudget`` so that their requests are counted together, and so that a 429/418
``Retry-After`` holds all of them, not only the request that drew it.

Invariants: within one local calendar minute ``acquire`` grants at most
``limit * (1 - safety_margin)`` weight on top of what the server last reported; while
``monotonic() < blocked_until`` it grants nothing.
"""

from __future__ import annotations

import logging
import math
from typing import NamedTuple

from realtime.clock import Clock, SystemClock

log = logging.getLogger(__name__)

DEFAULT_WEIGHT_LIMIT_1M = 6000
DEFAULT_SAFETY_MARGIN = 0.1
WINDOW_S = 60.0

# A sleep that lands exactly on a minute boundary can come back a float ulp short of it;
# the floor keeps that from turning into a loop of zero-length sleeps.
_MIN_WAIT_S = 0.001


class BudgetStats(NamedTuple):
    """Counters for metrics; ``used_weight`` is for the current minute, the rest are totals."""

    used_weight: int
    requests: int
    waits: int
    waited_s: float


class RateBudget:
    """One shared request-weight budget per process (per IP, as Binance counts).

    ``limit`` is the weight allowed per calendar minute, ``None`` to disable weight throttling
    (``blocked_until`` is still honoured). ``safety_margin`` is the fraction of ``limit`` kept
    free for requests in flight and for clock skew against the server's minute.
    """

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        limit: int | None = DEFAULT_WEIGHT_LIMIT_1M,
        safety_margin: float = DEFAULT_SAFETY_MARGIN,
    ) -> None:
        if limit is not None and limit <= 0:
            raise ValueError(f"limit must be positive or None, got {limit}")
        if not 0.0 <= safety_margin < 1.0:
            raise ValueError(f"safety_margin must be in [0, 1), got {safety_margin}")
        self.clock: Clock = clock or SystemClock()
        self.limit = limit
        self.safety_margin = safety_margin
        self.used_weight = 0
        """Weight used in the current minute: local grants, overridden by the server's header."""
        self.requests = 0
        self.waits = 0
        """Number of ``acquire`` calls that had to wait at least once."""
        self.waited_s = 0.0
        self.blocked_until = 0.0
        """``clock.monotonic()`` before which nothing is granted (set from ``Retry-After``)."""
        self._minute = self._current_minute()

    @property
    def effective_limit(self) -> int | None:
        """The weight per minute ``acquire`` will grant: ``limit`` minus the safety margin."""
        if self.limit is None:
            return None
        return max(1, math.floor(self.limit * (1.0 - self.safety_margin)))

    def stats(self) -> BudgetStats:
        """A snapshot of the counters."""
        self._roll_window()
        return BudgetStats(self.used_weight, self.requests, self.waits, self.waited_s)

    async def acquire(self, weight: int) -> None:
        """Wait until ``weight`` fits into the current minute and no block is active; take it."""
        cap = self.effective_limit
        if weight < 0:
            raise ValueError(f"weight must be >= 0, got {weight}")
        if cap is not None and weight > cap:
            raise ValueError(f"weight {weight} can never fit the budget of {cap} per minute")
        waited = False
        while True:
            wait_s = self._wait_needed(weight, cap)
            if wait_s <= 0.0:
                break
            if not waited:
                self.waits += 1
                waited = True
            self.waited_s += wait_s
            log.debug("rate budget: waiting %.3f s for weight %d", wait_s, weight)
            await self.clock.sleep(wait_s)
        self.used_weight += weight
        self.requests += 1

    def observe(self, used_weight_header: str | int | None) -> None:
        """Take the server's ``X-MBX-USED-WEIGHT-1M`` as the authoritative count of this minute.

        A missing or unparseable header changes nothing (the local count stands).
        """
        if used_weight_header is None:
            return
        try:
            used = int(used_weight_header)
        except (TypeError, ValueError):
            log.warning("ignoring unparseable X-MBX-USED-WEIGHT-1M %r", used_weight_header)
            return
        if used < 0:
            return
        self._roll_window()
        self.used_weight = used

    def block_for(self, seconds: float) -> None:
        """Hold every caller for ``seconds`` from now (a 429/418 ``Retry-After``); never shorten."""
        until = self.clock.monotonic() + max(0.0, seconds)
        if until > self.blocked_until:
            self.blocked_until = until
            log.warning("rate budget: all requests blocked for %.1f s", seconds)

    def _wait_needed(self, weight: int, cap: int | None) -> float:
        blocked_s = self.blocked_until - self.clock.monotonic()
        if blocked_s > 0.0:
            return blocked_s
        self._roll_window()
        if cap is None or self.used_weight + weight <= cap:
            return 0.0
        # The server forgets the weight at its next calendar minute; wait for ours.
        return max(_MIN_WAIT_S, WINDOW_S - self.clock.time() % WINDOW_S)

    def _current_minute(self) -> int:
        return math.floor(self.clock.time() / WINDOW_S)

    def _roll_window(self) -> None:
        minute = self._current_minute()
        if minute != self._minute:
            self._minute = minute
            self.used_weight = 0
