"""Ingest's side of the bus: events buffered per stream, written in pipelined blocks.

``publish`` and ``gap`` are synchronous and never block the socket reader; ``run`` flushes
whatever accumulated, one block entry per stream per flush, all in one pipeline, as soon
as the previous flush returned. When Redis is unreachable the events stay buffered (up to
``max_pending`` events, after which the oldest are dropped and counted) and the flush is
retried with a capped backoff, so a Redis restart loses nothing ingest still holds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Sequence

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from realtime.bus.codec import PACKED, BusEvent, encode_block
from realtime.ingest.gaps import GapRecord
from realtime.service.metrics import Metrics
from realtime.state.keys import BUS_MAXLEN, GAPS_MAXLEN, Keys

log = logging.getLogger(__name__)

KINDS = ("trade", "bba", "depth")
MAX_BLOCK_EVENTS = 2000


class BusWriter:
    def __init__(
        self,
        client: aioredis.Redis,
        keys: Keys,
        metrics: Metrics,
        *,
        source: str = "sbe",
        max_pending: int = 2_000_000,
        codec: str = PACKED,
    ) -> None:
        self.client = client
        self.keys = keys
        self.metrics = metrics
        self.source = source
        self.codec = codec
        self.max_pending = max_pending
        self._pending: dict[str, deque[BusEvent]] = {kind: deque() for kind in KINDS}
        self._gaps: deque[dict[str, str]] = deque()
        self._wake = asyncio.Event()
        self.dropped = 0
        self.written = 0

    # -- the sink ingest calls -------------------------------------------------------------

    def publish(self, kind: str, events: Sequence[BusEvent]) -> None:
        pending = self._pending[kind]
        pending.extend(events)
        overflow = sum(len(queue) for queue in self._pending.values()) - self.max_pending
        if overflow > 0:
            for _ in range(min(overflow, len(pending))):
                pending.popleft()
            self.dropped += overflow
            log.error("bus buffer full: oldest events dropped", extra={"dropped": overflow})
        self._wake.set()

    def gap(self, record: GapRecord) -> None:
        self._gaps.append(record.to_fields())
        self._wake.set()

    @property
    def pending_events(self) -> int:
        return sum(len(queue) for queue in self._pending.values())

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
            self.metrics.bus_pending.set(self.pending_events)

    async def flush(self) -> None:
        """Write everything pending; on failure nothing is removed from the buffers."""
        blocks: list[tuple[str, int, dict]] = []
        now_us = time.time_ns() // 1000
        for kind, queue in self._pending.items():
            events = list(queue)
            for start in range(0, len(events), MAX_BLOCK_EVENTS):
                chunk = events[start : start + MAX_BLOCK_EVENTS]
                blocks.append(
                    (
                        kind,
                        len(chunk),
                        encode_block(
                            chunk, source=self.source, ingest_ts_us=now_us, codec=self.codec
                        ),
                    )
                )
        gaps = list(self._gaps)
        if not blocks and not gaps:
            return
        async with self.client.pipeline(transaction=False) as pipe:
            for kind, _, fields in blocks:
                pipe.xadd(self.keys.bus(kind), fields, maxlen=BUS_MAXLEN, approximate=True)
            for fields in gaps:
                pipe.xadd(self.keys.gaps, fields, maxlen=GAPS_MAXLEN, approximate=True)
            await pipe.execute()
        # Only what was written is removed: publish() may have appended meanwhile.
        for kind, count, _ in blocks:
            queue = self._pending[kind]
            for _ in range(count):
                queue.popleft()
        for _ in gaps:
            self._gaps.popleft()
        self.written += sum(count for _, count, _ in blocks)
