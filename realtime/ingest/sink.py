"""Where the ingest role hands its output: normalised events per bus stream, and gap records.

The bus writer (``realtime.bus.writer.BusWriter``) is the production sink; it buffers and
batches, so the role can publish every frame as it arrives without waiting on Redis.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from realtime.ingest.gaps import GapRecord
from realtime.market.events import BestBidAsk, DepthDiff, DepthSnapshot, Trade

SinkEvent = Trade | BestBidAsk | DepthDiff | DepthSnapshot

BUS_KINDS = ("trade", "bba", "depth")
"""The bus streams (``md:{SYM}:<kind>``); diffs and ``@depth20`` snapshots share ``depth``."""


class IngestSink(Protocol):
    """Receives what ingest publishes; both methods are synchronous and must not block."""

    def publish(self, kind: str, events: Sequence[SinkEvent]) -> None:
        """``events`` of one received frame, new ones only, in order; ``kind`` in ``BUS_KINDS``."""
        ...

    def gap(self, record: GapRecord) -> None:
        """A gap detected; called before the events that revealed it are published."""
        ...
