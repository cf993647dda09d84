"""Binance's REST request-weight limit, server side: weight per calendar minute, 429, then 418.

Per client IP: each request adds its weight to the IP's count for the current minute.
A request that would pass ``weight_limit`` gets 429 with ``Retry-After`` = seconds to the
next minute and adds nothing. An IP that keeps asking while limited (more than
``ban_after`` refused requests in one minute) is banned: 418 with ``Retry-After`` = the
ban's remaining seconds, for every request until the ban ends. ``weight_limit=None``
switches the limit off (the weight is still counted and reported).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

from realtime.clock import Clock

MINUTE_S = 60.0


class Admission(NamedTuple):
    """What to answer: ``status`` 200 (serve), 429 or 418, with the header values."""

    status: int
    used_weight: int
    retry_after_s: int = 0


@dataclass
class _IpWindow:
    minute: int
    used_weight: int = 0
    refused: int = 0
    banned_until: float = 0.0


class RequestLimiter:
    """Weight accounting for every client IP on one clock."""

    def __init__(
        self,
        clock: Clock,
        *,
        weight_limit: int | None = 6000,
        ban_after: int = 5,
        ban_s: float = 120.0,
    ) -> None:
        self.clock = clock
        self.weight_limit = weight_limit
        self.ban_after = ban_after
        self.ban_s = ban_s
        self._windows: dict[str, _IpWindow] = {}

    def admit(self, ip: str, weight: int) -> Admission:
        """Count one request of ``weight`` from ``ip`` and say whether to serve it."""
        now = self.clock.time()
        minute = int(now // MINUTE_S)
        window = self._windows.get(ip)
        if window is None:
            window = self._windows[ip] = _IpWindow(minute)
        if window.minute != minute:
            window.minute, window.used_weight, window.refused = minute, 0, 0
        if now < window.banned_until:
            return Admission(418, window.used_weight, math.ceil(window.banned_until - now))
        limit = self.weight_limit
        if limit is not None and window.used_weight + weight > limit:
            window.refused += 1
            if window.refused > self.ban_after:
                window.banned_until = now + self.ban_s
                return Admission(418, window.used_weight, math.ceil(self.ban_s))
            to_next_minute = (minute + 1) * MINUTE_S - now
            return Admission(429, window.used_weight, max(1, math.ceil(to_next_minute)))
        window.used_weight += weight
        return Admission(200, window.used_weight)

    def used_weight(self, ip: str) -> int:
        window = self._windows.get(ip)
        minute = int(self.clock.time() // MINUTE_S)
        return window.used_weight if window is not None and window.minute == minute else 0
