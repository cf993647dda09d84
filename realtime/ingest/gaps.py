"""Gap detectors over a market's event streams: pure logic, no connections, no clocks.

Each detector is fed events in the order they were accepted (after de-duplication) and
answers with a ``GapRecord`` when something was lost: a trade id jump, a depth diff chain
break, or a stream gone silent. The ingest role publishes the records to ``gaps:{SYM}``,
where the lake's sensor (``btc_platform/lakehouse/gap_events.py``) reloads the hours they
touch; the features role reuses the same detectors on what it reads from the bus.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from realtime.market.events import DepthDiff, Trade

US_PER_S = 1_000_000


class GapKind(StrEnum):
    TRADE = "trade"
    """Trade ids skipped: ``first_id..last_id`` are the missing trade ids."""
    DEPTH = "depth"
    """The diff chain broke: ``first_id..last_id`` are the missing book update ids."""
    SILENCE = "silence"
    """A stream sent nothing for the silence limit; no ids are known."""


class GapRecord(NamedTuple):
    """One gap: what was lost, over which exchange times (µs), and when it was noticed."""

    kind: str
    first_time_us: int
    """Exchange time of the last event before the gap."""
    last_time_us: int
    """Exchange time of the first event after the gap (silence: the estimated exchange now)."""
    first_id: int | None
    last_id: int | None
    detected_us: int
    """Wall time of the detection, µs since the epoch."""

    def to_fields(self) -> dict[str, str]:
        """The entry of ``gaps:{SYM}``; ids are left out when unknown (silence)."""
        fields = {
            "kind": str(self.kind),
            "first_time_us": str(self.first_time_us),
            "last_time_us": str(self.last_time_us),
        }
        if self.first_id is not None:
            fields["first_id"] = str(self.first_id)
        if self.last_id is not None:
            fields["last_id"] = str(self.last_id)
        fields["detected_us"] = str(self.detected_us)
        return fields


def _time_range(before_us: int, after_us: int) -> tuple[int, int]:
    # The lake refuses a range that ends before it starts; exchange times of consecutive
    # events should never go backwards, but a record must stay usable if they do.
    return min(before_us, after_us), max(before_us, after_us)


class TradeIdTracker:
    """Trade id continuity: the next trade must be ``last + 1``; anything beyond is a gap."""

    def __init__(self) -> None:
        self.last_id: int | None = None
        self.last_time_us: int | None = None

    def observe(self, trade: Trade, *, detected_us: int) -> GapRecord | None:
        """Accept one trade; return the gap before it, if ids were skipped.

        A trade at or below the last id (a duplicate the caller let through) changes nothing.
        """
        last_id = self.last_id
        if last_id is not None and trade.trade_id <= last_id:
            return None
        gap = None
        if last_id is not None and trade.trade_id > last_id + 1:
            assert self.last_time_us is not None
            first_us, last_us = _time_range(self.last_time_us, trade.transact_time_us)
            gap = GapRecord(
                GapKind.TRADE, first_us, last_us, last_id + 1, trade.trade_id - 1, detected_us
            )
        self.last_id = trade.trade_id
        self.last_time_us = trade.transact_time_us
        return gap


class DepthChainTracker:
    """Diff chain continuity: a diff must start at ``u_prev + 1`` (Binance's ``U``/``u`` rule).

    A diff starting at or below ``u_prev`` but ending above it overlaps rather than skips:
    its quantities are absolute, so nothing is lost and no gap is reported (the same rule as
    ``realtime.market.book_sync``).
    """

    def __init__(self) -> None:
        self.last_update_id: int | None = None
        self.last_time_us: int | None = None

    def observe(self, diff: DepthDiff, *, detected_us: int) -> GapRecord | None:
        """Accept one diff; return the gap before it, if update ids were skipped."""
        last_id = self.last_update_id
        if last_id is not None and diff.last_update_id <= last_id:
            return None
        gap = None
        if last_id is not None and diff.first_update_id > last_id + 1:
            assert self.last_time_us is not None
            first_us, last_us = _time_range(self.last_time_us, diff.event_time_us)
            gap = GapRecord(
                GapKind.DEPTH, first_us, last_us, last_id + 1, diff.first_update_id - 1, detected_us
            )
        self.last_update_id = diff.last_update_id
        self.last_time_us = diff.event_time_us
        return gap


@dataclass
class _Spell:
    last_exchange_us: int
    last_arrival_s: float
    reported: bool = False


class SilenceWatch:
    """Per stream: no message for ``silence_s`` is one gap, reported once per silent spell.

    Arrival times are the caller's monotonic seconds; the record's range runs from the last
    message's exchange time to that time plus the silence so far, i.e. "now" on the exchange's
    clock, which keeps the range right even when the local wall clock is off.
    """

    def __init__(self, silence_s: float, streams: Iterable[str] = ()) -> None:
        if silence_s <= 0:
            raise ValueError(f"silence_s must be positive, got {silence_s}")
        self.silence_s = silence_s
        self._watched = frozenset(streams)
        self._spells: dict[str, _Spell] = {}

    def observe(self, stream: str, exchange_time_us: int, now_s: float) -> None:
        """A message of ``stream`` arrived at ``now_s``; a silent spell, if any, is over."""
        if self._watched and stream not in self._watched:
            return
        spell = self._spells.get(stream)
        if spell is None:
            self._spells[stream] = _Spell(exchange_time_us, now_s)
        else:
            spell.last_exchange_us = max(spell.last_exchange_us, exchange_time_us)
            spell.last_arrival_s = now_s
            spell.reported = False

    def silent_for(self, stream: str, now_s: float) -> float | None:
        """Seconds since ``stream``'s last message; ``None`` before its first."""
        spell = self._spells.get(stream)
        return None if spell is None else now_s - spell.last_arrival_s

    def check(self, now_s: float, *, detected_us: int) -> list[GapRecord]:
        """Gaps for streams that have just crossed the silence limit (each spell once).

        A stream that never sent anything has no exchange time to start a range from, so it
        is not reported here; the caller handles a connection that stays mute.
        """
        records = []
        for spell in self._spells.values():
            silent_s = now_s - spell.last_arrival_s
            if spell.reported or silent_s < self.silence_s:
                continue
            spell.reported = True
            first_us = spell.last_exchange_us
            records.append(
                GapRecord(
                    GapKind.SILENCE,
                    first_us,
                    first_us + int(silent_s * US_PER_S),
                    None,
                    None,
                    detected_us,
                )
            )
        return records
