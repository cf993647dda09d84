"""Doubted events, held while the exchange says whether to believe them (``market.plausibility``).

One task at a time settles the oldest held event. The exchange's REST is asked first: the
server time for a doubted time; the latest trade id, or the book's ``lastUpdateId``, for a
doubted id. When REST fails (an outage, an IP ban), the stream's own held events vote: with
at least ``CONSENSUS_MIN`` events of the doubted event's stream held, the median of their
times (or first ids) is the evidence, judged by the same ``Plausibility.believes`` rule. A
single lying first event is outvoted by the real ones behind it, and real events still get
through while REST is down. Which way each doubt was settled is counted in ``settled_by``
and logged.

Believed, the policy's anchor moves and the event goes back through the role's own admission
path, with everything held after it; refused, it is counted in
``btc_rejected_input_total{source, kind}``, logged and skipped, and the rest go back.

Bounded: at most ``capacity`` events are held; more are dropped (newest first) and counted
in ``btc_queue_dropped_total{queue}``, since a real event dropped here shows up downstream
as an id gap, which is repaired by REST. A REST failure without a consensus is retried with
a capped backoff for as long as it lasts: the held events wait, real events keep flowing
past them. An unexpected error in one step is counted in ``errors``, logged with its
traceback and the step retried after a pause: the task never dies with events held.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Generic, NamedTuple, Protocol, TypeVar

import aiohttp

from realtime.binance.errors import BinanceError
from realtime.binance.rest import BinanceRestClient
from realtime.log_throttle import WarningThrottle
from realtime.market.plausibility import (
    TRADE_STREAM,
    Doubt,
    EventFacts,
    ImplausibleEvent,
    Plausibility,
    PlausibilityLimits,
)

log = logging.getLogger(__name__)

E = TypeVar("E")

QUARANTINE_CAPACITY = 10_000
"""Held events at most: a few seconds of every stream at Binance's busiest."""
CONSENSUS_MIN = 5
"""Held events of one stream needed to settle a doubt among them without REST: one lie
among five is outvoted by the median."""
MAX_STEP_FAILURES = 3
"""Unexpected failures in a row on one held event before it alone is dropped."""
RETRY_FIRST_S = 0.2
RETRY_MAX_S = 5.0
DEPTH_LIMIT = 5
"""The smallest REST depth (weight 5): only its ``lastUpdateId`` is read."""

_FETCH_ERRORS = (BinanceError, OSError, TimeoutError, aiohttp.ClientError)


class LimitSettings(Protocol):
    """The settings the limits are read from (``RealtimeSettings``), in its units."""

    max_clock_skew_ms: int
    max_clock_lag_ms: int
    max_id_jump: int


def plausibility_limits(settings: LimitSettings) -> PlausibilityLimits:
    """The policy's limits from the settings: one place for every role that judges events."""
    return PlausibilityLimits.from_ms(
        settings.max_clock_skew_ms, settings.max_clock_lag_ms, settings.max_id_jump
    )


class _Count(Protocol):
    def inc(self, amount: float = 1) -> None: ...


class _Level(Protocol):
    def set(self, value: float) -> None: ...


class _Counters(Protocol):
    def labels(self, **labels: str) -> _Count: ...


class _Gauges(Protocol):
    def labels(self, **labels: str) -> _Level: ...


class QuarantineMetrics(Protocol):
    """The metrics the quarantine updates (``realtime.service.metrics.Metrics`` has them)."""

    queue_depth: _Gauges
    queue_dropped: _Counters
    rejected: _Counters


class _Held(NamedTuple):
    event: object
    facts: EventFacts
    doubt: Doubt
    arrived_s: float


class _Evidence(NamedTuple):
    value: int
    asked_s: float
    """Monotonic time the request was sent: it speaks for events that arrived before."""


class Quarantine(Generic[E]):
    """The doubted events of one consumer (``source``: ``ingest`` or ``bus``).

    ``readmit`` takes back one event at a time, in arrival order: one the role fails on
    costs that event alone (counted in ``errors``), never the others held.
    """

    def __init__(
        self,
        policy: Plausibility,
        rest: BinanceRestClient,
        symbol: str,
        metrics: QuarantineMetrics,
        *,
        source: str,
        readmit: Callable[[E], None],
        wall_us: Callable[[], int],
        capacity: int = QUARANTINE_CAPACITY,
    ) -> None:
        self.policy = policy
        self.rest = rest
        self.symbol = symbol
        self.source = source
        self._readmit = readmit
        self._wall_us = wall_us
        self.capacity = capacity
        self._held: deque[_Held] = deque()
        self._task: asyncio.Task[None] | None = None
        self._evidence: dict[str, _Evidence] = {}
        self._warnings = WarningThrottle()
        queue = f"{source}_quarantine"
        self._depth = metrics.queue_depth.labels(queue=queue)
        self._dropped = metrics.queue_dropped.labels(queue=queue)
        self._rejected = metrics.rejected
        self.rejected = 0
        self.dropped = 0
        self.errors = 0
        """Unexpected failures of a verifying step or a re-admission (a bug; logged)."""
        self.settled_by: Counter[str] = Counter()
        """Doubts settled, by where the evidence came from: ``rest`` or ``consensus``."""

    @property
    def pending(self) -> int:
        """Events held or being verified."""
        return len(self._held)

    def hold(self, event: E, facts: EventFacts, doubt: Doubt) -> None:
        """Keep ``event`` until the evidence is in; starts the verifying task if idle."""
        if len(self._held) >= self.capacity:
            self.dropped += 1
            self._dropped.inc()
            self._warn("quarantine full; event dropped", {"doubt": doubt.value})
            return
        self._held.append(_Held(event, facts, doubt, time.monotonic()))
        self._depth.set(len(self._held))
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._verify(), name=f"{self.source}-quarantine"
            )

    async def drained(self) -> None:
        """Return once nothing is held (the last verification's events re-admitted)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def close(self) -> None:
        """Stop verifying; what is still held is dropped (the roles are stopping). Never raises."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        except Exception:  # the loop catches its own; this is the last guard of a shutdown
            self.errors += 1
            log.exception("quarantine task failed", extra={"source": self.source})

    async def _verify(self) -> None:
        failures = 0
        while self._held:
            try:
                await self._settle_head()
                failures = 0
            except Exception:
                # A bug in a step (an unexpected error from REST, the policy or a callback):
                # nothing held was taken out yet, so the step is retried after a capped pause;
                # a head that fails every time is given up alone, the others stay.
                self.errors += 1
                failures += 1
                pause_s = min(RETRY_FIRST_S * 2 ** (failures - 1), RETRY_MAX_S)
                give_up = failures >= MAX_STEP_FAILURES and bool(self._held)
                log.exception(
                    "quarantine step failed",
                    extra={
                        "source": self.source,
                        "held": len(self._held),
                        "head": _describe(self._held[0].facts) if self._held else None,
                        "head_dropped": give_up,
                        "retry_in_s": pause_s,
                    },
                )
                if give_up:
                    self._held.popleft()
                    self._depth.set(len(self._held))
                    failures = 0
                await asyncio.sleep(pause_s)

    async def _settle_head(self) -> None:
        head = self._held[0]
        facts = head.facts
        evidence, by = await self._evidence_for(head)
        # Judged before anything leaves the deque: an unexpected error here loses nothing.
        error: ImplausibleEvent | None = None
        try:
            self.policy.settle(head.doubt, facts, evidence, self._wall_us())
        except ImplausibleEvent as refused:
            error = refused
        self._held.popleft()
        rest = [held.event for held in self._held]
        self._held.clear()
        self._depth.set(0)
        self.settled_by[by] += 1
        if error is not None:
            self.rejected += 1
            self._rejected.labels(source=self.source, kind=error.kind.value).inc()
            self._warn(
                "implausible event rejected",
                {"kind": error.kind.value, "error": str(error), "settled_by": by},
            )
        else:
            log.info(
                "doubted event confirmed",
                extra={
                    "doubt": head.doubt.value,
                    "event": _describe(facts),
                    "evidence": evidence,
                    "settled_by": by,
                },
            )
            rest.insert(0, head.event)
        for event in rest:
            try:
                self._readmit(event)  # type: ignore[arg-type]
            except Exception:
                self.errors += 1
                log.exception("re-admitting a held event failed", extra={"source": self.source})

    async def _evidence_for(self, head: _Held) -> tuple[int, str]:
        """The evidence on ``head`` and where it came from: REST first, else the consensus
        of the stream's held events once REST has failed; retried until one of them speaks."""
        doubt, facts = head.doubt, head.facts
        key = "time" if doubt.about_time else f"id:{facts.stream == TRADE_STREAM}"
        cached = self._evidence.get(key)
        if cached is not None and cached.asked_s >= head.arrived_s:
            return cached.value, "rest"
        retry = 0
        while True:
            asked_s = time.monotonic()
            try:
                value = await self._ask(doubt, facts)
            except _FETCH_ERRORS as error:
                consensus = self._consensus(doubt, facts.stream)
                if consensus is not None:
                    return consensus, "consensus"
                delay_s = min(RETRY_FIRST_S * 2**retry, RETRY_MAX_S)
                retry += 1
                self._warn(
                    "could not verify a doubted event; retrying",
                    {"doubt": doubt.value, "error": repr(error), "retry_in_s": delay_s},
                )
                await asyncio.sleep(delay_s)
                continue
            self._evidence[key] = _Evidence(value, asked_s)
            return value, "rest"

    def _consensus(self, doubt: Doubt, stream: str) -> int | None:
        """The median time (or first id) of the held events of ``stream``; ``None`` below
        ``CONSENSUS_MIN`` of them. Bounded by the quarantine's capacity."""
        if doubt.about_time:
            values = [
                held.facts.time_us
                for held in self._held
                if held.facts.stream == stream and held.facts.time_us is not None
            ]
        else:
            values = [held.facts.first_id for held in self._held if held.facts.stream == stream]
        if len(values) < CONSENSUS_MIN:
            return None
        return int(statistics.median_low(values))

    async def _ask(self, doubt: Doubt, facts: EventFacts) -> int:
        if doubt.about_time:
            return await self.rest.server_time_us()
        if facts.stream == TRADE_STREAM:
            recent = await self.rest.trades(self.symbol, limit=1)
            if not recent:
                raise OSError("the exchange returned no recent trade")
            return recent[-1].trade_id
        return (await self.rest.depth(self.symbol, limit=DEPTH_LIMIT)).last_update_id

    def _warn(self, message: str, extra: dict[str, object]) -> None:
        self._warnings.warn(log, message, {**extra, "source": self.source}, now_s=time.monotonic())


def _describe(facts: EventFacts) -> dict[str, object]:
    return {
        "stream": facts.stream,
        "first_id": facts.first_id,
        "last_id": facts.last_id,
        "time_us": facts.time_us,
    }
