"""Warnings at a bounded rate: a flood of bad input is counted in full but logged sparsely.

Neutral ground for every layer (ingest, market, service): it imports nothing of the project.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping


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

    def warn(
        self,
        logger: logging.Logger,
        message: str,
        extra: Mapping[str, object],
        *,
        now_s: float,
        key: str | None = None,
    ) -> None:
        """Log ``message`` at warning level unless ``key`` (default: the message) spoke within
        the interval; the line carries how many were held back (``suppressed``)."""
        suppressed = self.allow(message if key is None else key, now_s)
        if suppressed is not None:
            logger.warning(message, extra={**extra, "suppressed": suppressed})
