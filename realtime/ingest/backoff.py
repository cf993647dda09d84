"""Reconnect delays: capped exponential backoff with full jitter, reset by a healthy connection.

Full jitter (a uniform draw between zero and the capped exponential) spreads the reconnects
of many clients cut at once, so they do not hit the exchange together; Binance allows 300
connection attempts per 5 minutes per IP and bans repeat offenders.
"""

from __future__ import annotations

import random

# Past this exponent the ceiling is max_s anyway; stopping here keeps 2**n a small float.
_MAX_EXPONENT = 62


class Backoff:
    """The delay before each reconnect attempt; attempts count up until a connection lasts.

    ``next_delay_s`` for attempt ``n`` (from 0) is uniform in
    ``[0, min(max_s, base_s * 2**n)]``. ``connection_up_for`` with at least
    ``healthy_after_s`` resets ``n`` to 0, so a connection that stayed healthy that long is
    followed by a fast reconnect, while one that keeps failing backs off up to ``max_s``.
    """

    def __init__(
        self,
        *,
        base_s: float = 0.5,
        max_s: float = 30.0,
        healthy_after_s: float = 60.0,
        rng: random.Random | None = None,
    ) -> None:
        if not 0 < base_s <= max_s:
            raise ValueError(f"need 0 < base_s <= max_s, got base_s={base_s}, max_s={max_s}")
        self.base_s = base_s
        self.max_s = max_s
        self.healthy_after_s = healthy_after_s
        self._rng = rng or random.Random()
        self.attempts = 0

    def ceiling_s(self) -> float:
        """The upper bound of the next delay."""
        return min(self.max_s, self.base_s * 2.0 ** min(self.attempts, _MAX_EXPONENT))

    def next_delay_s(self) -> float:
        """The delay before the next attempt, seconds; counts the attempt."""
        delay = self._rng.uniform(0.0, self.ceiling_s())
        self.attempts += 1
        return delay

    def connection_up_for(self, seconds: float) -> None:
        """A connection has been healthy for ``seconds``; long enough resets the attempts."""
        if seconds >= self.healthy_after_s:
            self.attempts = 0
