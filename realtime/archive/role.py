"""The archive role: the bus's market events into capture segments, flushed every second.

It reads ``md:{SYM}:trade|bba|depth`` with its own cursors (the bus's ``BusReader``: a
malformed block is counted and skipped; a stream recreated by a Redis restart, whose
last id fell below the cursor, is read again from its start). Redis being away costs this
role only its reads: it retries with a capped, jittered backoff, and keeps flushing the
writers meanwhile, so predictions the infer role appends directly keep landing.

Stop it with ``stop()``: the loop ends after the read in flight (at most ``block_ms``)
and flushes. Cancelling the task instead can hang: redis-py 8.1's asyncio client
sometimes swallows a cancellation that lands during a blocking ``XREAD`` (observed here
about once in a hundred tries; redis/redis-py#2028 is the same class of bug).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from realtime.archive.capture import CaptureWriters
from realtime.archive.schemas import KIND_OF_EVENT
from realtime.archive.segments import SegmentClosed
from realtime.bus.codec import BusEvent
from realtime.bus.reader import BusReader
from realtime.clock import Clock, SystemClock
from realtime.service.metrics import Metrics
from realtime.state.keys import Keys

log = logging.getLogger(__name__)

ROLE = "archive"
BLOCK_MS = 1000
FLUSH_INTERVAL_S = 1.0
BACKOFF_INITIAL_S = 0.1
BACKOFF_MAX_S = 5.0


def segment_counter(metrics: Metrics) -> SegmentClosed:
    """The ``on_segment_closed`` hook that counts closed segments by kind."""

    def closed(kind: str, path: object, rows: int) -> None:
        metrics.segments.labels(kind=kind).inc()

    return closed


class ArchiveRole:
    """Consume the bus into ``writers`` until cancelled."""

    def __init__(
        self,
        client: aioredis.Redis,
        keys: Keys,
        writers: CaptureWriters,
        metrics: Metrics,
        *,
        start: str = "$",
        clock: Clock | None = None,
        block_ms: int = BLOCK_MS,
        flush_interval_s: float = FLUSH_INTERVAL_S,
        backoff_max_s: float = BACKOFF_MAX_S,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.reader = BusReader(client, keys, start=start)
        self.writers = writers
        self.metrics = metrics
        self.clock = clock or SystemClock()
        self.block_ms = block_ms
        self.flush_interval_s = flush_interval_s
        self.backoff_max_s = backoff_max_s
        self.rng = rng or random.Random()
        self.events_archived = 0
        self.redis_errors = 0
        self._stopping = False

    @property
    def malformed(self) -> int:
        """Bus entries skipped because they did not decode."""
        return self.reader.malformed

    def stop(self) -> None:
        """End ``run`` after the read in flight; what it read is appended. The writers stay
        open: their owner closes them (the infer role may still be appending)."""
        self._stopping = True

    async def run(self) -> None:
        backoff_s = BACKOFF_INITIAL_S
        next_flush = self.clock.monotonic() + self.flush_interval_s
        try:
            while not self._stopping:
                wait_ms = int((next_flush - self.clock.monotonic()) * 1000)
                try:
                    batches = await self.reader.read(max(1, min(self.block_ms, wait_ms)))
                except (RedisError, OSError) as error:
                    self.redis_errors += 1
                    self.metrics.redis_errors.labels(role=ROLE).inc()
                    log.warning(
                        "bus read failed; retrying",
                        extra={"error": repr(error), "retry_in_s": backoff_s},
                    )
                    await self._sleep_flushing(backoff_s * self.rng.uniform(0.5, 1.0))
                    backoff_s = min(backoff_s * 2, self.backoff_max_s)
                    next_flush = self.clock.monotonic() + self.flush_interval_s
                    continue
                backoff_s = BACKOFF_INITIAL_S
                for _, events in batches:
                    self._append(events)
                if self.clock.monotonic() >= next_flush:
                    self.writers.flush()
                    next_flush = self.clock.monotonic() + self.flush_interval_s
        finally:
            self.writers.flush()

    def _append(self, events: Sequence[BusEvent]) -> None:
        """Append runs of one kind (a depth stream mixes diffs and snapshots)."""
        run: list[BusEvent] = []
        run_kind = ""
        for event in events:
            kind = KIND_OF_EVENT.get(type(event))
            if kind is None:
                log.warning("bus event of no capture kind skipped", extra={"type": type(event)})
                continue
            if kind != run_kind and run:
                self._append_run(run_kind, run)
                run = []
            run_kind = kind
            run.append(event)
        if run:
            self._append_run(run_kind, run)

    def _append_run(self, kind: str, events: list[BusEvent]) -> None:
        self.writers.append_events(kind, events)
        self.events_archived += len(events)

    async def _sleep_flushing(self, seconds: float) -> None:
        """Sleep, flushing the writers at the usual interval meanwhile."""
        while seconds > 0 and not self._stopping:
            step = min(seconds, self.flush_interval_s)
            await self.clock.sleep(step)
            seconds -= step
            self.writers.flush()
