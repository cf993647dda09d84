"""Ingest's side of the bus: events queued in arrival order, encoded once, written in chunks.

``publish`` and ``gap`` are synchronous and never block the socket reader; ``run`` flushes
whatever accumulated as soon as the previous flush returned. A flush encodes the oldest
queued events into blocks (one block entry per stream, at most ``MAX_BLOCK_EVENTS`` events
each) and writes at most ``pipeline_blocks`` blocks per pipeline, so every ``execute``
carries a bounded payload that fits well within the client's ``socket_timeout`` however
large the backlog; it gives the event loop back between chunks.

When Redis is unreachable the chunk in flight stays encoded for the retry (an event is
encoded once, whatever the number of retries) and the rest stays queued, retried with a
capped backoff, so a Redis restart loses nothing ingest still holds. The queue holds at
most ``max_pending`` events: beyond that the oldest queued events of any stream are dropped
(the chunk in flight, at most ``pipeline_blocks`` blocks and older still, is kept), counted
in ``btc_queue_dropped_total{queue="bus-<kind>"}`` and logged. Gap records have their own
queue of ``max_gaps``, dropped oldest first the same way (``queue="bus-gaps"``).

Delivery is at least once: a chunk whose ``execute`` timed out may have been applied by a
Redis that was only slow, and is written again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Sequence
from typing import NamedTuple

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from realtime.bus.codec import PACKED, BusEvent, encode_block
from realtime.ingest.gaps import GapRecord
from realtime.service.metrics import Metrics
from realtime.state.keys import BUS_MAXLEN, GAPS_MAXLEN, Keys

log = logging.getLogger(__name__)

KINDS = ("trade", "bba", "depth")
MAX_BLOCK_EVENTS = 2000
PIPELINE_BLOCKS = 16
"""Blocks per ``execute``: 16 blocks of packed events are about 1.5 MB, tens of ms to
write, far below the service's 2 s socket timeout."""
MAX_PENDING = 2_000_000
MAX_GAPS = 10_000
GAPS_QUEUE = "bus-gaps"
DROP_LOG_INTERVAL_S = 10.0
"""While the buffer overflows, one log line per this many seconds (the counter has all)."""


class _Block(NamedTuple):
    kind: str
    count: int
    fields: dict


class BusWriter:
    """Buffer of ingest's events and gap records, flushed to ``md:{SYM}:<kind>``/``gaps``.

    Invariant: ``pending_events`` (queued plus in flight) never exceeds ``max_pending``.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        keys: Keys,
        metrics: Metrics,
        *,
        source: str = "sbe",
        max_pending: int = MAX_PENDING,
        max_gaps: int = MAX_GAPS,
        pipeline_blocks: int = PIPELINE_BLOCKS,
        codec: str = PACKED,
    ) -> None:
        if max_pending <= 0 or max_gaps <= 0 or pipeline_blocks <= 0:
            raise ValueError("max_pending, max_gaps and pipeline_blocks must be positive")
        self.client = client
        self.keys = keys
        self.metrics = metrics
        self.source = source
        self.codec = codec
        self.max_pending = max_pending
        self.max_gaps = max_gaps
        self.pipeline_blocks = pipeline_blocks
        self._queue: deque[tuple[str, Sequence[BusEvent]]] = deque()
        """Published frames not yet encoded, oldest first, across every stream."""
        self._in_flight: list[_Block] = []
        """Encoded blocks of the chunk being written (kept as they are for a retry)."""
        self._depth = dict.fromkeys(KINDS, 0)
        self._gaps: deque[dict[str, str]] = deque()
        self._gaps_in_flight: list[dict[str, str]] = []
        self._wake = asyncio.Event()
        self._depth_gauges = {
            kind: metrics.queue_depth.labels(queue=f"bus-{kind}") for kind in KINDS
        }
        self._dropped_counters = {
            kind: metrics.queue_dropped.labels(queue=f"bus-{kind}") for kind in KINDS
        }
        self.dropped = 0
        self.gaps_dropped = 0
        self.written = 0
        self._last_drop_log_s = -DROP_LOG_INTERVAL_S

    # -- the sink ingest calls -------------------------------------------------------------

    def publish(self, kind: str, events: Sequence[BusEvent]) -> None:
        """Queue ``events`` of one stream (kept as given, not copied: the caller hands them
        over); beyond ``max_pending`` the oldest queued events are dropped."""
        if not events:
            return
        self._queue.append((kind, events))
        self._depth[kind] += len(events)
        if self.pending_events > self.max_pending:
            self._drop_oldest(self.pending_events - self.max_pending)
        self._wake.set()

    def gap(self, record: GapRecord) -> None:
        self._gaps.append(record.to_fields())
        if len(self._gaps) + len(self._gaps_in_flight) > self.max_gaps and self._gaps:
            self._gaps.popleft()
            self.gaps_dropped += 1
            self.metrics.queue_dropped.labels(queue=GAPS_QUEUE).inc()
            self._log_drop(GAPS_QUEUE, 1)
        self._wake.set()

    @property
    def pending_events(self) -> int:
        """Events not yet written: queued and in flight."""
        return sum(self._depth.values())

    # -- flushing --------------------------------------------------------------------------

    async def run(self) -> None:
        backoff_s = 0.05
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
                backoff_s = 0.05
            except (RedisError, OSError) as error:
                self.metrics.redis_errors.labels(role="ingest").inc()
                log.warning(
                    "bus write failed; events kept for retry",
                    extra={"error": repr(error), "pending": self.pending_events},
                )
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, 2.0)
                self._wake.set()
            self._report_depth()

    async def flush(self) -> None:
        """Write everything pending, one chunk of at most ``pipeline_blocks`` blocks per
        pipeline; on failure the chunk in flight and what is queued behind it are kept."""
        while True:
            if not self._in_flight:
                self._in_flight = self._encode_chunk()
            if not self._gaps_in_flight:
                while self._gaps and len(self._gaps_in_flight) < self.pipeline_blocks:
                    self._gaps_in_flight.append(self._gaps.popleft())
            if not self._in_flight and not self._gaps_in_flight:
                return
            async with self.client.pipeline(transaction=False) as pipe:
                for block in self._in_flight:
                    pipe.xadd(
                        self.keys.bus(block.kind), block.fields, maxlen=BUS_MAXLEN, approximate=True
                    )
                for fields in self._gaps_in_flight:
                    pipe.xadd(self.keys.gaps, fields, maxlen=GAPS_MAXLEN, approximate=True)
                await pipe.execute()
            for block in self._in_flight:
                self._depth[block.kind] -= block.count
                self.written += block.count
            self._in_flight, self._gaps_in_flight = [], []
            self._report_depth()
            await asyncio.sleep(0)  # the loop runs between chunks

    def _encode_chunk(self) -> list[_Block]:
        """The oldest queued events, at most ``pipeline_blocks`` full blocks' worth, as
        blocks (per stream, in order); they leave the queue."""
        budget = self.pipeline_blocks * MAX_BLOCK_EVENTS
        by_kind: dict[str, list[BusEvent]] = {}
        while self._queue and budget > 0:
            kind, events = self._queue[0]
            if len(events) > budget:
                self._queue[0] = (kind, events[budget:])
                events = events[:budget]
            else:
                self._queue.popleft()
            by_kind.setdefault(kind, []).extend(events)
            budget -= len(events)
        now_us = time.time_ns() // 1000
        blocks = []
        for kind, events in by_kind.items():
            for start in range(0, len(events), MAX_BLOCK_EVENTS):
                chunk = events[start : start + MAX_BLOCK_EVENTS]
                fields = encode_block(
                    chunk, source=self.source, ingest_ts_us=now_us, codec=self.codec
                )
                blocks.append(_Block(kind, len(chunk), fields))
        return blocks

    def _drop_oldest(self, count: int) -> None:
        """Drop ``count`` of the oldest queued events (never the chunk in flight)."""
        dropped = dict.fromkeys(KINDS, 0)
        while count > 0 and self._queue:
            kind, events = self._queue[0]
            if len(events) > count:
                self._queue[0] = (kind, events[count:])
                taken = count
            else:
                self._queue.popleft()
                taken = len(events)
            dropped[kind] += taken
            count -= taken
        for kind, number in dropped.items():
            if number:
                self._depth[kind] -= number
                self._dropped_counters[kind].inc(number)
                self.dropped += number
                self._log_drop(f"bus-{kind}", number)
        self._report_depth()

    def _log_drop(self, queue: str, number: int) -> None:
        now_s = time.monotonic()
        if now_s - self._last_drop_log_s >= DROP_LOG_INTERVAL_S:
            self._last_drop_log_s = now_s
            log.error(
                "bus buffer full: oldest dropped (logged once per interval)",
                extra={
                    "queue": queue,
                    "dropped": number,
                    "dropped_total": self.dropped + self.gaps_dropped,
                    "max_pending": self.max_pending,
                    "max_gaps": self.max_gaps,
                },
            )

    def _report_depth(self) -> None:
        for kind, gauge in self._depth_gauges.items():
            gauge.set(self._depth[kind])
        gaps = len(self._gaps) + len(self._gaps_in_flight)
        self.metrics.queue_depth.labels(queue=GAPS_QUEUE).set(gaps)
        self.metrics.bus_pending.set(self.pending_events)
