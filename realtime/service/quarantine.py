"""Doubted events, held while the exchange says whether to believe them (``market.plausibility``).

One task at a time fetches the evidence for the oldest held event over REST (the server
time for a doubted time; the latest trade id, or the book's ``lastUpdateId``, for a doubted
id). Believed, the policy's anchor moves and the event goes back through the role's own
admission path, with everything held after it; refused, it is counted in
``btc_rejected_input_total{source, kind}``, logged and skipped, and the rest go back.

Bounded: at most ``capacity`` events are held; more are dropped (newest first) and counted
in ``btc_queue_dropped_total{queue}``, since a real event dropped here shows up downstream
as an id gap, which is repaired by REST. A REST failure is retried with a capped backoff
for as long as it lasts (its attempt count restarts after each success): the held events
wait, real events keep flowing past them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Generic, NamedTuple, TypeVar

import aiohttp

from realtime.binance.errors import BinanceError
from realtime.binance.rest import BinanceRestClient
from realtime.ingest.frames import WarningThrottle
from realtime.market.plausibility import (
    TRADE_STREAM,
    Doubt,
    EventFacts,
    ImplausibleEvent,
    Plausibility,
    PlausibilityLimits,
)
from realtime.service.metrics import Metrics
from realtime.service.settings import RealtimeSettings

log = logging.getLogger(__name__)

E = TypeVar("E")

QUARANTINE_CAPACITY = 10_000
"""Held events at most: a few seconds of every stream at Binance's busiest."""
RETRY_FIRST_S = 0.2
RETRY_MAX_S = 5.0
DEPTH_LIMIT = 5
"""The smallest REST depth (weight 5): only its ``lastUpdateId`` is read."""

_FETCH_ERRORS = (BinanceError, OSError, TimeoutError, aiohttp.ClientError)


def plausibility_limits(settings: RealtimeSettings) -> PlausibilityLimits:
    """The policy's limits from the settings: one place for every role that judges events."""
    return PlausibilityLimits.from_ms(
        settings.max_clock_skew_ms, settings.max_clock_lag_ms, settings.max_id_jump
    )


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
    """The doubted events of one consumer (``source``: ``ingest`` or ``bus``)."""

    def __init__(
        self,
        policy: Plausibility,
        rest: BinanceRestClient,
        symbol: str,
        metrics: Metrics,
        *,
        source: str,
        readmit: Callable[[list[E]], None],
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
        """Stop verifying; what is still held is dropped (the roles are stopping)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    async def _verify(self) -> None:
        while self._held:
            head = self._held[0]
            facts = head.facts
            evidence = await self._fetch(head.doubt, facts, head.arrived_s)
            self._held.popleft()
            rest = [held.event for held in self._held]
            self._held.clear()
            self._depth.set(0)
            try:
                self.policy.settle(head.doubt, facts, evidence, self._wall_us())
            except ImplausibleEvent as error:
                self.rejected += 1
                self._rejected.labels(source=self.source, kind=error.kind.value).inc()
                self._warn(
                    "implausible event rejected", {"kind": error.kind.value, "error": str(error)}
                )
            else:
                log.info(
                    "doubted event confirmed by the exchange",
                    extra={
                        "doubt": head.doubt.value,
                        "event": _describe(facts),
                        "evidence": evidence,
                    },
                )
                rest.insert(0, head.event)
            self._readmit(rest)  # type: ignore[arg-type]

    async def _fetch(self, doubt: Doubt, facts: EventFacts, arrived_s: float) -> int:
        """The exchange's word on ``doubt``, asked after ``arrived_s`` (retried until given)."""
        key = "time" if doubt.about_time else f"id:{facts.stream == TRADE_STREAM}"
        cached = self._evidence.get(key)
        if cached is not None and cached.asked_s >= arrived_s:
            return cached.value
        retry = 0
        while True:
            asked_s = time.monotonic()
            try:
                value = await self._ask(doubt, facts)
            except _FETCH_ERRORS as error:
                delay_s = min(RETRY_FIRST_S * 2**retry, RETRY_MAX_S)
                retry += 1
                self._warn(
                    "could not verify a doubted event; retrying",
                    {"doubt": doubt.value, "error": repr(error), "retry_in_s": delay_s},
                )
                await asyncio.sleep(delay_s)
                continue
            self._evidence[key] = _Evidence(value, asked_s)
            return value

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
        suppressed = self._warnings.allow(message, time.monotonic())
        if suppressed is not None:
            log.warning(message, extra={**extra, "source": self.source, "suppressed": suppressed})


def _describe(facts: EventFacts) -> dict[str, object]:
    return {
        "stream": facts.stream,
        "first_id": facts.first_id,
        "last_id": facts.last_id,
        "time_us": facts.time_us,
    }
