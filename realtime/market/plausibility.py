"""Plausibility of market events at the edges: the one policy on exchange times and ids.

An event stamped far in the future (a bit-flipped but well-formed frame, or any other
writer of the bus) would otherwise be taken as "exchange now", and a trade id far ahead of
the stream would make every later real trade look repeated. Both sides of the service
(ingest before its de-duplication, the features role on what it reads from the bus) run
every new event through one ``Plausibility`` before it can move any state.

The rules, per event (µs; ids per stream):

* an id at or below the stream's last accepted id is a **repeat**: not this policy's to
  judge (ingest's de-duplication counts it, the features role already had it);
* the exchange's clock may not run ahead of the wall clock: an event more than
  ``max_ahead_us`` past the market's newest time plus the wall time elapsed since that time
  was seen is **doubted** (``time_ahead``). Bounding the drift since the newest event, not
  an absolute offset, works for any market clock (the local exchange replays 2026-01-01,
  at any speed) and accepts a real outage, where both clocks moved;
* a stream's exchange times never go back for new ids: an event more than
  ``max_behind_us`` before its own stream's newest time is doubted (``time_behind``);
* an id more than ``max_id_jump`` past the stream's last is doubted (``id_jump``);
* the first event anchors the clock and each stream's first event anchors its ids, so they
  are doubted too (``first_time``, ``first_id``): a bad first event must not become the
  reference every real one is judged against.

A doubted event is not believed until the exchange's REST answer says so (``believes``):
its server time for times, its latest trade or book update id for ids. Believing moves
the anchor (that is how a wrong anchor is corrected); refusing rejects the event. This
module is pure: the caller fetches the evidence and holds the doubted events meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

from realtime.market.events import BestBidAsk, DepthDiff, DepthSnapshot, Trade, TradeBatch

TRADE_STREAM = "trade"
"""The stream whose ids are trade ids; every other stream carries book update ids."""


MAX_FIRST_AGE_US = 86_400_000_000
"""No real event is a day older than the exchange's clock when it reaches us, whatever the
replay speed of a local market; a first event that old would anchor the clock in the past."""


class Doubt(StrEnum):
    """Why an event is not believed yet; also the ``kind`` label of a rejection."""

    TIME_AHEAD = "time_ahead"
    TIME_BEHIND = "time_behind"
    ID_JUMP = "id_jump"
    FIRST_TIME = "first_time"
    FIRST_ID = "first_id"

    @property
    def about_time(self) -> bool:
        return self in (Doubt.TIME_AHEAD, Doubt.TIME_BEHIND, Doubt.FIRST_TIME)


class Outcome(StrEnum):
    ACCEPT = "accept"
    REPEAT = "repeat"
    DOUBT = "doubt"


class Verdict(NamedTuple):
    outcome: Outcome
    doubt: Doubt | None = None
    """Set exactly when ``outcome`` is ``DOUBT``."""


ACCEPTED = Verdict(Outcome.ACCEPT)
REPEATED = Verdict(Outcome.REPEAT)
FIRST_TIME = Verdict(Outcome.DOUBT, Doubt.FIRST_TIME)
FIRST_ID = Verdict(Outcome.DOUBT, Doubt.FIRST_ID)
TIME_AHEAD = Verdict(Outcome.DOUBT, Doubt.TIME_AHEAD)
TIME_BEHIND = Verdict(Outcome.DOUBT, Doubt.TIME_BEHIND)
ID_JUMP = Verdict(Outcome.DOUBT, Doubt.ID_JUMP)


class EventFacts(NamedTuple):
    """What the policy reads from one event: its stream, id range and exchange time."""

    stream: str
    first_id: int
    last_id: int
    time_us: int | None
    """``None`` for events without a time (REST depth snapshots): only ids are checked."""


def _facts(*values: object) -> EventFacts:
    # ``tuple.__new__`` skips the NamedTuple's Python-level ``__new__``: this runs per event.
    return tuple.__new__(EventFacts, values)  # type: ignore[type-var,return-value]


def _trade_batch_facts(batch: TradeBatch) -> EventFacts | None:
    trades = batch.trades
    if not trades:
        return None
    return _facts(TRADE_STREAM, trades[0].trade_id, trades[-1].trade_id, batch.transact_time_us)


_FACTS_OF_TYPE: dict[type, Callable[[Any], EventFacts | None]] = {
    TradeBatch: _trade_batch_facts,
    Trade: lambda t: _facts(TRADE_STREAM, t.trade_id, t.trade_id, t.transact_time_us),
    BestBidAsk: lambda q: _facts("bestBidAsk", q.book_update_id, q.book_update_id, q.event_time_us),
    DepthDiff: lambda d: _facts("depth", d.first_update_id, d.last_update_id, d.event_time_us),
    DepthSnapshot: lambda p: _facts("depth20", p.last_update_id, p.last_update_id, p.event_time_us),
}
"""Per event type; the stream names are ingest's (``realtime.ingest.dedup.STREAMS``)."""


def facts_of(
    event: Trade | TradeBatch | BestBidAsk | DepthDiff | DepthSnapshot,
) -> EventFacts | None:
    """The facts the policy judges; ``None`` for an empty trade batch (nothing to judge)."""
    return _FACTS_OF_TYPE[type(event)](event)


class ImplausibleEvent(Exception):
    """An event refused by the policy after the exchange's evidence; carries the kind."""

    def __init__(self, kind: Doubt, facts: EventFacts, evidence: int) -> None:
        self.kind = kind
        self.facts = facts
        self.evidence = evidence
        super().__init__(
            f"{kind.value}: {facts.stream} id {facts.first_id}..{facts.last_id} "
            f"at {facts.time_us} µs; the exchange says {evidence}"
        )


@dataclass(frozen=True)
class PlausibilityLimits:
    """The tolerances; ``from_ms`` builds them from the service settings' units."""

    max_ahead_us: int = 5_000_000
    max_behind_us: int = 60_000_000
    max_id_jump: int = 1_000_000

    def __post_init__(self) -> None:
        if min(self.max_ahead_us, self.max_behind_us, self.max_id_jump) <= 0:
            raise ValueError(f"plausibility limits must be positive: {self}")

    @classmethod
    def from_ms(cls, max_ahead_ms: int, max_behind_ms: int, max_id_jump: int) -> PlausibilityLimits:
        return cls(max_ahead_ms * 1000, max_behind_ms * 1000, max_id_jump)


class Plausibility:
    """The clock and id anchors of one market, as one consumer has accepted them."""

    def __init__(self, limits: PlausibilityLimits) -> None:
        self.limits = limits
        self.newest_us: int | None = None
        """The market's newest accepted exchange time (any stream)."""
        self._newest_wall_us = 0
        self._stream_newest_us: dict[str, int] = {}
        self._last_id: dict[str, int] = {}
        self._max_ahead_us = limits.max_ahead_us
        self._max_behind_us = limits.max_behind_us
        self._max_id_jump = limits.max_id_jump

    def last_id(self, stream: str) -> int | None:
        return self._last_id.get(stream)

    def check(self, facts: EventFacts, wall_us: int) -> Verdict:
        """Accept (and remember), call a repeat, or doubt one event seen at ``wall_us``."""
        stream, first_id, last_id, time_us = facts
        last_ids = self._last_id
        last = last_ids.get(stream)
        if last is not None and last_id <= last:
            return REPEATED
        if time_us is not None:
            newest = self.newest_us
            if newest is None:
                return FIRST_TIME
            elapsed_us = wall_us - self._newest_wall_us
            if time_us > newest + (elapsed_us if elapsed_us > 0 else 0) + self._max_ahead_us:
                return TIME_AHEAD
            stream_newest = self._stream_newest_us.get(stream)
            if stream_newest is not None and time_us < stream_newest - self._max_behind_us:
                return TIME_BEHIND
        if last is None:
            return FIRST_ID
        if first_id > last + self._max_id_jump:
            return ID_JUMP
        # Accepted: this runs for every event, hence inline.
        last_ids[stream] = last_id
        if time_us is not None:
            if time_us > newest:  # type: ignore[operator]  # set above whenever time_us is
                self.newest_us = time_us
                self._newest_wall_us = wall_us
            if stream_newest is None or time_us > stream_newest:
                self._stream_newest_us[stream] = time_us
        return ACCEPTED

    def believes(self, doubt: Doubt, facts: EventFacts, evidence: int) -> bool:
        """Whether the exchange's evidence makes a doubted event plausible.

        ``evidence`` was fetched after the event arrived: for times the server time (µs),
        for ids the exchange's latest id of the stream's sequence. A real event is at or
        before it. How far before is not bounded tightly: a consumer may lag the exchange
        (a replay at unlimited speed, a backlog on the bus), so an old time is believed only
        where the reference it was doubted against was itself beyond the server's clock.
        """
        limits = self.limits
        if doubt.about_time:
            time_us = facts.time_us
            assert time_us is not None
            if not evidence - MAX_FIRST_AGE_US <= time_us <= evidence + limits.max_ahead_us:
                return False
            if doubt is Doubt.TIME_BEHIND:
                newest = self._stream_newest_us.get(facts.stream)
                return newest is not None and newest > evidence + limits.max_ahead_us
            return True
        # REST may trail the stream by a few events; a corrupted id is far beyond that.
        slack = limits.max_id_jump // 100
        return evidence - limits.max_id_jump <= facts.first_id <= evidence + slack

    def settle(self, doubt: Doubt, facts: EventFacts, evidence: int, wall_us: int) -> None:
        """Believe a doubted event on the exchange's evidence, or raise ``ImplausibleEvent``."""
        if not self.believes(doubt, facts, evidence):
            raise ImplausibleEvent(self.refusal_kind(doubt, facts, evidence), facts, evidence)
        self.believe(doubt, facts, wall_us)

    def believe(self, doubt: Doubt, facts: EventFacts, wall_us: int) -> None:
        """Move the anchor the doubt was about to the event (evidence said it is real).

        The event itself is not accepted here: the caller checks it again, since it may
        fail another rule (a first event is doubted for its time, then for its id).
        """
        if doubt.about_time:
            assert facts.time_us is not None
            # The old anchor was wrong (or a real outage passed): the event is the new one.
            self.newest_us = facts.time_us
            self._newest_wall_us = wall_us
            self._stream_newest_us[facts.stream] = facts.time_us
        else:
            self._last_id[facts.stream] = facts.first_id - 1

    def refusal_kind(self, doubt: Doubt, facts: EventFacts, evidence: int) -> Doubt:
        """The rejection label: a refused first time is ahead or behind the server's."""
        if doubt is Doubt.FIRST_TIME:
            assert facts.time_us is not None
            return Doubt.TIME_AHEAD if facts.time_us > evidence else Doubt.TIME_BEHIND
        if doubt is Doubt.FIRST_ID:
            return Doubt.ID_JUMP
        return doubt
