"""When a live second may close: its trades are all in, and the other streams moved past it.

The three bus streams (trades, best bid/ask, depth) arrive on one socket in the exchange's
order but are read back per stream, so a trade of second ``t`` can be read after a depth
diff of ``t + 1``. A trade frame lost on the way (truncated, dropped) is only noticed when
the next trade shows the id jump, and its recovery must find the second still open. So a
second closes when

* a trade of a later second has arrived (trade ids then prove the second complete) and
  every stream is ``grace`` past the second's end (a late best bid/ask still lands), or
* the market has been quiet: any stream is ``quiet`` past the second's end with no later
  trade (a second without trades cannot wait for one forever).

While trades are being recovered after a gap, closing stops at the second before the gap,
since the missing trades belong to it or later. A trade that still comes after its second
closed (a stalled trade stream while the others flowed) corrects the published second
(``correction``): within five minutes, closing early costs a recomputation, not a trade.
"""

from __future__ import annotations

from realtime.features.bars import US_PER_SECOND

QUIET_US = 2_000_000
"""Without later trades, a second closes after this much quiet. A lost trade frame is only
noticed at the next trade; two seconds lets it be recovered into its own second in all but
the longest lulls, and features of a quiet second are still fresh (2.5 s) when published."""


class SecondClock:
    """Tracks the newest exchange times seen and says which seconds may close."""

    def __init__(self, grace_us: int, quiet_us: int = QUIET_US) -> None:
        if not 0 <= grace_us <= quiet_us:
            raise ValueError(f"need 0 <= grace ({grace_us}) <= quiet ({quiet_us}) µs")
        self.grace_us = grace_us
        self.quiet_us = quiet_us
        self.newest_us: int | None = None
        self.newest_trade_us: int | None = None
        self.hold_from_sec: int | None = None
        """While set, no second ``>= hold_from_sec`` closes (trades being recovered)."""

    def observe(self, time_us: int, *, trade: bool = False) -> None:
        if self.newest_us is None or time_us > self.newest_us:
            self.newest_us = time_us
        if trade and (self.newest_trade_us is None or time_us > self.newest_trade_us):
            self.newest_trade_us = time_us

    def closable_through(self) -> int | None:
        """The newest second that may close now, or ``None``."""
        if self.newest_us is None:
            return None
        quiet = (self.newest_us - self.quiet_us) // US_PER_SECOND - 1
        through = quiet
        if self.newest_trade_us is not None:
            traded = self.newest_trade_us // US_PER_SECOND - 1
            moved = (self.newest_us - self.grace_us) // US_PER_SECOND - 1
            through = max(quiet, min(traded, moved))
        if self.hold_from_sec is not None:
            through = min(through, self.hold_from_sec - 1)
        return through
