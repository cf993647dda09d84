"""What arrives on an SBE stream connection besides market data, and how failures are told.

Binary frames are SBE messages (``realtime.binance.sbe.decode``). Text frames are JSON:
replies to control requests, and the ``serverShutdown`` notice (SPEC 1.3), which asks for a
replacement connection at once.
"""

from __future__ import annotations

import json
from typing import NamedTuple


class ServerShutdown(NamedTuple):
    """``{"e":"serverShutdown","E":<ms>}``: the server is about to go down."""

    event_time_ms: int | None


def parse_text_frame(text: str) -> ServerShutdown | None:
    """The shutdown notice in a text frame, or ``None`` for anything else (control replies)."""
    try:
        payload = json.loads(text)
    except ValueError:
        return None
    if not isinstance(payload, dict) or payload.get("e") != "serverShutdown":
        return None
    event_time = payload.get("E")
    is_int = isinstance(event_time, int) and not isinstance(event_time, bool)
    return ServerShutdown(event_time if is_int else None)


class WarningThrottle:
    """At most one warning per key per ``interval_s``; the ones held back are counted.

    A corrupt feed can send thousands of bad frames a second: each is counted in the metrics,
    but the log gets one line per interval saying how many were suppressed.
    """

    def __init__(self, interval_s: float = 10.0) -> None:
        self.interval_s = interval_s
        self._last_s: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def allow(self, key: str, now_s: float) -> int | None:
        """``None`` to stay quiet; otherwise log now, and this many were suppressed before."""
        last = self._last_s.get(key)
        if last is not None and now_s - last < self.interval_s:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return None
        self._last_s[key] = now_s
        return self._suppressed.pop(key, 0)
