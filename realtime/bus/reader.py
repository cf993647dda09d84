"""The consumers' side of the bus: ``XREAD`` over the streams from a cursor per stream.

A restarted Redis (no persistence) comes back with empty streams whose new ids are smaller
than the cursors, and ``XREAD`` from a cursor past the end waits forever. After any
connection error the reader compares each cursor with its stream's last id and restarts
from the beginning of a stream that went backwards; consumers drop what they already had
by exchange id. Malformed entries are counted and skipped.
"""

from __future__ import annotations

import logging

import redis.asyncio as aioredis
from prometheus_client import Counter

from realtime.bus.codec import BusEvent, MalformedBlock, decode_block
from realtime.state.keys import Keys

log = logging.getLogger(__name__)


def _id_tuple(stream_id: bytes | str) -> tuple[int, int]:
    text = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    milliseconds, _, sequence = text.partition("-")
    return int(milliseconds), int(sequence or 0)


class BusReader:
    def __init__(
        self,
        client: aioredis.Redis,
        keys: Keys,
        kinds: tuple[str, ...] = ("trade", "bba", "depth"),
        *,
        start: str = "$",
        count: int = 500,
        rejected: Counter | None = None,
    ) -> None:
        self.client = client
        self.symbol = keys.symbol.upper()
        self.streams = {keys.bus(kind): kind for kind in kinds}
        self.cursors: dict[str, str] = dict.fromkeys(self.streams, start)
        self.count = count
        self.malformed = 0
        self._malformed = (
            rejected.labels(source="bus", kind="malformed") if rejected is not None else None
        )
        """``btc_rejected_input_total``: the one count of refused input, by source and kind."""
        self._check_restart = False

    async def read(self, block_ms: int) -> list[tuple[str, list[BusEvent]]]:
        """The next entries of every stream as ``(kind, events)``, stream by stream."""
        if "$" in self.cursors.values():
            await self._resolve_newest()
        if self._check_restart:
            await self._rewind_restarted_streams()
        try:
            reply = await self.client.xread(self.cursors, count=self.count, block=block_ms)
        except Exception:
            self._check_restart = True
            raise
        batches: list[tuple[str, list[BusEvent]]] = []
        for stream, entries in reply or ():
            name = stream.decode() if isinstance(stream, bytes) else stream
            kind = self.streams[name]
            for entry_id, fields in entries:
                self.cursors[name] = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                try:
                    batches.append((kind, decode_block(fields, self.symbol)))
                except MalformedBlock as error:
                    self.malformed += 1
                    if self._malformed is not None:
                        self._malformed.inc()
                    log.warning(
                        "malformed bus entry skipped", extra={"stream": name, "error": str(error)}
                    )
        return batches

    async def _resolve_newest(self) -> None:
        """``$`` means "after the newest entry now": pin it once. Repeating ``$`` on every
        ``XREAD`` would skip whatever reached a quiet stream between two reads."""
        for stream, cursor in self.cursors.items():
            if cursor == "$":
                newest = await self.client.xrevrange(stream, count=1)
                last = newest[0][0] if newest else b"0-0"
                self.cursors[stream] = last.decode() if isinstance(last, bytes) else last

    async def _rewind_restarted_streams(self) -> None:
        for stream, cursor in self.cursors.items():
            newest = await self.client.xrevrange(stream, count=1)
            if not newest or _id_tuple(newest[0][0]) < _id_tuple(cursor):
                log.warning(
                    "bus stream restarted; reading it from the start", extra={"stream": stream}
                )
                self.cursors[stream] = "0-0"
        self._check_restart = False
