"""The live service's capture: one segment writer per kind under the capture directory.

The archive role appends what it reads from the bus; the infer role appends each
prediction directly, so predictions are captured while Redis is away. A capture writes
only the kinds it is given, and owns them (one live writer per kind, by an OS lock): so
``btc-realtime archive`` (the market kinds) and ``btc-realtime infer`` (``predictions``) run
side by side, and a second process for the same kind is refused with ``CaptureInUse``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from realtime.archive import schemas
from realtime.archive.ownership import CaptureInUse
from realtime.archive.rows import MARKET_SOURCE, market_batch, predictions_batch
from realtime.archive.segments import (
    MAX_HELD_BYTES,
    ROW_GROUP_ROWS,
    Recovery,
    SegmentClosed,
    SegmentWriter,
)
from realtime.clock import Clock, SystemClock
from realtime.inference.prediction import Prediction
from realtime.service.metrics import Metrics
from realtime.service.settings import RealtimeSettings

__all__ = ["CaptureInUse", "CaptureWriters"]


class CaptureWriters:
    """Segment writers for ``kinds`` (default all four: ``trades``, ``best_bid_ask``,
    ``depth``, ``predictions``); raises ``CaptureInUse`` if another live writer owns one
    (the kinds taken before it are released)."""

    def __init__(
        self,
        directory: Path,
        *,
        max_age_s: float,
        max_bytes: int,
        clock: Clock | None = None,
        row_group_rows: int = ROW_GROUP_ROWS,
        on_segment_closed: SegmentClosed | None = None,
        source: str = MARKET_SOURCE,
        kinds: Iterable[str] = schemas.KINDS,
        metrics: Metrics | None = None,
        max_held_bytes: int = MAX_HELD_BYTES,
    ) -> None:
        self.directory = Path(directory)
        self.clock = clock or SystemClock()
        self.source = source
        self.writers: dict[str, SegmentWriter] = {}
        try:
            for kind in kinds:
                if kind not in schemas.SCHEMAS:
                    raise ValueError(f"not a capture kind: {kind!r}; choose from {schemas.KINDS}")
                self.writers[kind] = SegmentWriter(
                    self.directory,
                    kind,
                    schemas.SCHEMAS[kind],
                    max_age_s=max_age_s,
                    max_bytes=max_bytes,
                    clock=self.clock,
                    time_column=schemas.TIME_COLUMNS[kind],
                    row_group_rows=row_group_rows,
                    on_segment_closed=on_segment_closed,
                    metrics=metrics,
                    max_held_bytes=max_held_bytes,
                )
        except BaseException:
            self.close()  # nothing written yet: this releases the kinds already taken
            raise

    @classmethod
    def from_settings(cls, settings: RealtimeSettings, **options) -> CaptureWriters:
        """Writers under ``settings.capture_dir`` with the settings' rotation limits."""
        return cls(
            settings.capture_dir,
            max_age_s=settings.segment_max_s,
            max_bytes=settings.segment_max_bytes,
            **options,
        )

    def append_events(self, kind: str, events: Sequence[object]) -> None:
        """Market events of one kind (``trades``, ``best_bid_ask`` or ``depth``), stamped
        with this capture's ``source`` and the time they are captured."""
        if not events:
            return
        ingest_ts_us = int(self.clock.time() * 1_000_000)
        batch = market_batch(kind, events, source=self.source, ingest_ts_us=ingest_ts_us)
        self._writer(kind).append(batch)

    def append_prediction(self, prediction: Prediction) -> None:
        self._writer(schemas.PREDICTIONS).append(predictions_batch([prediction]))

    def _writer(self, kind: str) -> SegmentWriter:
        writer = self.writers.get(kind)
        if writer is None:
            raise ValueError(
                f"this capture does not write {kind!r} (it writes {list(self.writers)})"
            )
        return writer

    def flush(self) -> None:
        """Close the segments that are due (call at least every second)."""
        for writer in self.writers.values():
            writer.flush()

    def close(self) -> None:
        """Close every open segment (what was appended becomes readable)."""
        for writer in self.writers.values():
            writer.close()

    @property
    def recovery(self) -> dict[str, Recovery]:
        """What each writer found of a crashed predecessor."""
        return {kind: writer.recovery for kind, writer in self.writers.items()}
