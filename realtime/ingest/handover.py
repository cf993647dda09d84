"""When a replacement connection may take over from the one it replaces: pure logic.

The replacement's messages are held while the old connection keeps publishing. It may take
over once it has caught up: for each id-chained stream (trades, depth diffs) its first
message is covered by what was published, i.e. starts at or below ``last + 1``. From then
on it holds everything the old one could still deliver, so switching loses nothing, and the
held messages at or below the published ids are dropped as duplicates. If it does not catch
up within ``timeout_s`` (a quiet market, a broken old connection), the caller switches
anyway and the gap detectors report whatever was lost.
"""

from __future__ import annotations

from realtime.binance.sbe import SbeMessage
from realtime.ingest.dedup import DEPTH, TRADE, Deduplicator
from realtime.market.events import DepthDiff, TradeBatch


class Handover:
    """The messages of a replacement connection, held until it takes over."""

    def __init__(
        self, reason: str, started_s: float, timeout_s: float, *, max_held: int = 200_000
    ) -> None:
        self.reason = reason
        self.started_s = started_s
        self.timeout_s = timeout_s
        self.max_held = max_held
        """Beyond this many held messages the replacement takes over at once (memory bound)."""
        self.held: list[SbeMessage] = []
        self.first_trade_id: int | None = None
        self.first_diff_id: int | None = None

    def hold(self, message: SbeMessage) -> None:
        """Keep one message of the replacement connection, in arrival order."""
        self.held.append(message)
        if self.first_trade_id is None and isinstance(message, TradeBatch) and message.trades:
            self.first_trade_id = message.trades[0].trade_id
        elif self.first_diff_id is None and isinstance(message, DepthDiff):
            self.first_diff_id = message.first_update_id

    def caught_up(self, published: Deduplicator) -> bool:
        """Whether the replacement's first trade and first diff are covered by ``published``."""
        return _covered(self.first_trade_id, published.last_id(TRADE)) and _covered(
            self.first_diff_id, published.last_id(DEPTH)
        )

    def overdue(self, now_s: float) -> bool:
        """Whether the caller should switch without waiting any longer."""
        return now_s - self.started_s >= self.timeout_s or len(self.held) >= self.max_held

    def drain(self) -> list[SbeMessage]:
        """The held messages, oldest first; the handover holds nothing afterwards."""
        held, self.held = self.held, []
        return held


def _covered(first_id: int | None, last_published: int | None) -> bool:
    if last_published is None:
        return True  # the old connection published nothing here: there is nothing to wait for
    return first_id is not None and first_id <= last_published + 1
