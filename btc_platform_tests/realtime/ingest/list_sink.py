"""An in-memory ``IngestSink`` for tests: keeps everything, and lets a test await a condition."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from btc_platform_tests.support.waiting import HANG_GUARD_S
from realtime.ingest.gaps import GapRecord
from realtime.ingest.sink import SinkEvent
from realtime.market.events import DepthDiff, DepthSnapshot, Trade


class ListSink:
    """Every publish and gap, in call order."""

    def __init__(self) -> None:
        self.published: list[tuple[str, tuple[SinkEvent, ...]]] = []
        self.gaps: list[GapRecord] = []
        self._changed = asyncio.Event()

    def publish(self, kind: str, events: Sequence[SinkEvent]) -> None:
        self.published.append((kind, tuple(events)))
        self._changed.set()

    def gap(self, record: GapRecord) -> None:
        self.gaps.append(record)
        self._changed.set()

    def events(self, kind: str) -> list[SinkEvent]:
        return [event for k, events in self.published if k == kind for event in events]

    @property
    def trades(self) -> list[Trade]:
        return self.events("trade")  # type: ignore[return-value]

    @property
    def diffs(self) -> list[DepthDiff]:
        return [e for e in self.events("depth") if isinstance(e, DepthDiff)]

    @property
    def depth20(self) -> list[DepthSnapshot]:
        return [e for e in self.events("depth") if isinstance(e, DepthSnapshot)]

    def gaps_of(self, kind: str) -> list[GapRecord]:
        return [record for record in self.gaps if record.kind == kind]

    async def wait_until(
        self, condition: Callable[[], bool], timeout_s: float = HANG_GUARD_S
    ) -> None:
        """Return once ``condition()`` holds; it is re-checked after every publish or gap."""
        async with asyncio.timeout(timeout_s):
            while not condition():
                self._changed.clear()
                await self._changed.wait()
