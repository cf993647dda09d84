"""The ingest role: keep one live SBE connection, and hand on what it receives exactly once.

Frames are decoded, checked for plausibility (``market.plausibility``: an implausible time
or id is held until REST confirms it, or the stream's own held events do while REST is down
(``market.quarantine``), so it cannot poison the de-duplication or make a giant gap),
de-duplicated by id, checked for gaps and published to the sink as they arrive; a frame that
does not decode is counted by error type and skipped. A lost connection is reopened after a
jittered backoff. A connection that must be replaced (the ``serverShutdown`` notice,
``max_connection_age_s`` before Binance's 24 h cut, or a silent trade stream) is replaced
without a hole: the new one opens while the old one still publishes, takes over once it has
caught up (``handover``), and the overlap is dropped by id.

All the decisions are made by the pure pieces (``dedup``, ``gaps``, ``handover``,
``backoff``); this module owns the sockets and the timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from typing import NamedTuple

import aiohttp
from prometheus_client import Counter

from realtime.binance.rest import BinanceRestClient
from realtime.binance.sbe import SbeDecodeError, SbeMessage, decode
from realtime.clock import Clock, SystemClock
from realtime.ingest.backoff import Backoff
from realtime.ingest.connection import StreamConnection, combined_stream_url, open_socket
from realtime.ingest.dedup import BUS_KIND, DEPTH, STREAMS, TRADE, Deduplicator
from realtime.ingest.frames import parse_text_frame
from realtime.ingest.gaps import (
    DepthChainTracker,
    GapRecord,
    SilenceWatch,
    TradeIdTracker,
)
from realtime.ingest.handover import Handover
from realtime.ingest.sink import IngestSink
from realtime.log_throttle import WarningThrottle
from realtime.market.events import TradeBatch
from realtime.market.plausibility import Plausibility, facts_of
from realtime.market.quarantine import Quarantine, plausibility_limits
from realtime.service.metrics import Metrics
from realtime.service.settings import RealtimeSettings

log = logging.getLogger(__name__)

US_PER_S = 1_000_000
MAX_TICK_S = 1.0
"""The role re-checks its connections at least this often, and at every deadline."""
MIN_WAIT_S = 0.005


class IngestRole:
    """The SBE stream client of one symbol; ``run`` until cancelled or ``stop``.

    ``clock`` gives the wall time of gap detections and metrics and the monotonic time of
    connection ages and silences; ``backoff`` paces reconnects; a replacement connection that
    has not caught up after ``catch_up_s`` (default ``silence_s``) takes over anyway.
    """

    def __init__(
        self,
        settings: RealtimeSettings,
        sink: IngestSink,
        metrics: Metrics,
        *,
        clock: Clock | None = None,
        backoff: Backoff | None = None,
        catch_up_s: float | None = None,
        rest: BinanceRestClient | None = None,
    ) -> None:
        self.settings = settings
        self.sink = sink
        self.metrics = metrics
        self.url = combined_stream_url(settings.stream_url, settings.symbol)
        self._clock = clock or SystemClock()
        self._backoff = backoff or Backoff(max_s=settings.reconnect_max_s)
        self._catch_up_s = catch_up_s if catch_up_s is not None else settings.silence_s
        self._silence_s = settings.silence_s
        self._max_age_s = settings.max_connection_age_s

        # Closed by ``run`` only when made here: a client passed in is its owner's to close.
        self._owns_rest = rest is None
        self._rest = rest or BinanceRestClient(settings.rest_url, api_key=settings.api_key)
        self.plausibility = Plausibility(plausibility_limits(settings))
        self.quarantine: Quarantine[SbeMessage] = Quarantine(
            self.plausibility,
            self._rest,
            settings.symbol,
            metrics,
            source="ingest",
            readmit=self._readmit,
            wall_us=self._now_us,
        )
        self._dedup = Deduplicator()
        self._trade_ids = TradeIdTracker()
        self._depth_chain = DepthChainTracker()
        # Only trades: a gap record has no stream field, and a quiet book side is normal.
        self._silence = SilenceWatch(self._silence_s, streams=(TRADE,))
        self._warnings = WarningThrottle()

        self._primary: StreamConnection | None = None
        self._candidate: StreamConnection | None = None
        self._handover: Handover | None = None
        self._replace_reason: str | None = None
        self._next_candidate_s = 0.0
        self._next_connect_s = 0.0
        self._lost_reason: str | None = None
        """Why the last publishing connection ended; the next one is a reconnect for it."""
        self._opened = 0
        self._retiring: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._stopping = False

        self._outlets = {s: _Outlet.of(s, metrics) for s in STREAMS}
        self._last_message_s = dict.fromkeys(STREAMS, 0.0)
        """Wall time of each stream's last message; the gauge reads it when scraped, which
        spares the per-frame path a metric update (and its lock)."""
        for stream in STREAMS:
            gauge = metrics.last_message.labels(stream=stream)
            gauge.set_function(functools.partial(self._last_message_s.__getitem__, stream))

    # -- lifecycle ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect and keep publishing until ``stop`` or cancellation; closes its sockets."""
        log.info(
            "ingest starting",
            extra={
                "url": self.url,
                "symbol": self.settings.symbol,
                "has_api_key": bool(self.settings.api_key),
            },
        )
        try:
            while not self._stopping:
                await self._step()
                if not self._stopping:
                    await self._wait(self._until_next_deadline_s(self._clock.monotonic()))
        finally:
            await self._close_all()
            await self.quarantine.close()
            if self._owns_rest:
                await self._rest.close()
            log.info("ingest stopped", extra={"connections_opened": self._opened})

    def stop(self) -> None:
        """Ask ``run`` to close its connections and return."""
        self._stopping = True
        self._wake.set()

    @property
    def connected(self) -> bool:
        """Whether a connection is publishing."""
        return self._primary is not None and not self._primary.ended

    @property
    def connections_opened(self) -> int:
        return self._opened

    def _until_next_deadline_s(self, now_s: float) -> float:
        """Seconds until something is due: a (re)connect, an age or silence limit, a switch."""
        deadlines = [now_s + MAX_TICK_S]
        primary = self._primary
        if primary is None:
            deadlines.append(self._next_connect_s)
        else:
            deadlines.append(primary.opened_s + self._max_age_s)
            deadlines.append(primary.last_trade_s + self._silence_s)
            if self._replace_reason is not None and self._candidate is None:
                deadlines.append(self._next_candidate_s)
        if self._handover is not None:
            deadlines.append(self._handover.started_s + self._handover.timeout_s)
        # A deadline already past was acted on in this step (or is waiting on another one,
        # like a silent stream's replacement): waiting for it again would spin.
        return max(MIN_WAIT_S, min(d for d in deadlines if d > now_s) - now_s)

    async def _wait(self, timeout_s: float) -> None:
        # Woken early by frames that change the plan (a notice, a closed socket).
        if not self._wake.is_set():
            woken = asyncio.ensure_future(self._wake.wait())
            slept = asyncio.ensure_future(self._clock.sleep(timeout_s))
            try:
                await asyncio.wait({woken, slept}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                woken.cancel()
                slept.cancel()
        self._wake.clear()

    async def _close_all(self) -> None:
        connections = [c for c in (self._primary, self._candidate) if c is not None]
        self._primary = self._candidate = None
        self._handover = None
        for connection in connections:
            with contextlib.suppress(Exception):
                await connection.close()
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)

    # -- the plan, re-evaluated on every tick and wake-up ------------------------------------

    async def _step(self) -> None:
        self._handle_ended(self._clock.monotonic())
        if self._primary is None:
            if self._clock.monotonic() >= self._next_connect_s:
                await self._connect_primary()
            return
        self._watch_primary(self._clock.monotonic())
        if (
            self._replace_reason is not None
            and self._candidate is None
            and self._clock.monotonic() >= self._next_candidate_s
        ):
            await self._open_candidate(self._replace_reason)
        handover = self._handover
        if handover is not None and handover.overdue(self._clock.monotonic()):
            log.warning(
                "replacement connection did not catch up in time; switching anyway",
                extra={"reason": handover.reason, "catch_up_s": self._catch_up_s},
            )
            self._switch()

    def _handle_ended(self, now_s: float) -> None:
        primary, candidate = self._primary, self._candidate
        if candidate is not None and candidate.ended and not (primary and primary.ended):
            log.warning(
                "replacement connection ended before taking over",
                extra={"connection": candidate.number, "reason": candidate.end_reason},
            )
            self._candidate = self._handover = None
            self._next_candidate_s = now_s + self._backoff.next_delay_s()
        if primary is None or not primary.ended:
            return
        if self._candidate is not None and not self._candidate.ended:
            self._switch()  # the replacement holds everything since it opened
            return
        self._lost_reason = primary.end_reason
        self._primary = self._candidate = self._handover = None
        self._replace_reason = None
        delay_s = self._backoff.next_delay_s()
        self._next_connect_s = now_s + delay_s
        log.warning(
            "stream connection lost; reconnecting",
            extra={"connection": primary.number, "reason": primary.end_reason, "delay_s": delay_s},
        )

    async def _connect_primary(self) -> None:
        connection = await self._open(self._lost_reason)
        if connection is None:
            self._lost_reason = self._lost_reason or "error"
            self._next_connect_s = self._clock.monotonic() + self._backoff.next_delay_s()
            return
        self._primary = connection
        connection.start()

    async def _open_candidate(self, reason: str) -> None:
        connection = await self._open(reason)
        if connection is None:
            self._next_candidate_s = self._clock.monotonic() + self._backoff.next_delay_s()
            return
        self._candidate = connection
        self._handover = Handover(reason, connection.opened_s, self._catch_up_s)
        connection.start()

    async def _open(self, reason: str | None) -> StreamConnection | None:
        """Open a socket; ``None`` when refused or unreachable (logged, never raised)."""
        try:
            socket = await open_socket(self.url, self.settings.api_key)
        except (OSError, TimeoutError, aiohttp.ClientError) as error:
            log.warning(
                "stream connection failed",
                extra={"url": self.url, "reason": reason, "error": _describe(error)},
            )
            return None
        if self._stopping:
            await socket.close()
            return None
        if self._opened > 0 and reason is not None:
            self.metrics.reconnects.labels(reason=reason).inc()
        self._opened += 1
        connection = StreamConnection(
            self._opened,
            socket,
            self._clock.monotonic(),
            on_frame=self._on_frame,
            on_end=self._on_end,
        )
        log.info(
            "stream connection opened",
            extra={"connection": connection.number, "reason": reason, "url": self.url},
        )
        return connection

    def _watch_primary(self, now_s: float) -> None:
        primary = self._primary
        assert primary is not None
        quiet_s = now_s - primary.last_trade_s
        if quiet_s < self._silence_s:
            self._backoff.connection_up_for(now_s - primary.opened_s)
        for record in self._silence.check(now_s, detected_us=self._now_us()):
            self._emit_gap(record)
        if self._replace_reason is not None:
            return
        if now_s - primary.opened_s >= self._max_age_s:
            self._request_replacement("lifetime", now_s)
        elif quiet_s >= self._silence_s:
            # A connection that keeps going mute is not healthy: back off between attempts.
            self._request_replacement("silence", now_s + self._backoff.next_delay_s())

    def _request_replacement(self, reason: str, not_before_s: float) -> None:
        self._replace_reason = reason
        self._next_candidate_s = not_before_s
        log.info("replacing the stream connection", extra={"reason": reason})
        self._wake.set()

    def _switch(self) -> None:
        """The replacement takes over: publish what it held (overlap dropped), retire the old."""
        old, new, handover = self._primary, self._candidate, self._handover
        assert new is not None
        assert handover is not None
        self._primary, self._candidate, self._handover = new, None, None
        self._replace_reason = None
        now_s = self._clock.monotonic()
        new.last_trade_s = max(new.last_trade_s, now_s)
        held = handover.drain()
        for message in held:
            self._publish(message, now_s)
        log.info(
            "replacement connection took over",
            extra={
                "connection": new.number,
                "replaced": old.number if old is not None else None,
                "reason": handover.reason,
                "held": len(held),
            },
        )
        if new.shutdown_notified:
            # The notice reached it too (same server): it needs replacing in turn.
            self._request_replacement("shutdown", now_s)
        if old is not None:
            task = asyncio.get_running_loop().create_task(old.close())
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)

    # -- frames (synchronous: called by the readers, never blocking) -------------------------

    def _on_end(self, connection: StreamConnection) -> None:
        self._wake.set()

    def _on_frame(self, connection: StreamConnection, frame: bytes | str) -> None:
        is_candidate = connection is self._candidate
        if connection is not self._primary and not is_candidate:
            return  # a retired connection: everything it still sends is covered
        if isinstance(frame, str):
            self._on_text(connection, frame)
            return
        try:
            message = decode(frame)
        except SbeDecodeError as error:
            self._on_decode_error(connection, frame, error)
            return
        now_s = self._clock.monotonic()
        if isinstance(message, TradeBatch):
            connection.last_trade_s = now_s
        handover = self._handover
        if is_candidate:
            assert handover is not None
            handover.hold(message)
        else:
            self._publish(message, now_s)
        if handover is not None and handover.caught_up(self._dedup):
            self._switch()

    def _on_text(self, connection: StreamConnection, text: str) -> None:
        notice = parse_text_frame(text)
        if notice is None:
            log.debug("text frame ignored", extra={"connection": connection.number})
            return
        connection.shutdown_notified = True
        log.warning(
            "serverShutdown notice",
            extra={"connection": connection.number, "event_time_ms": notice.event_time_ms},
        )
        if connection is self._primary and self._replace_reason is None:
            self._request_replacement("shutdown", self._clock.monotonic())

    def _on_decode_error(
        self, connection: StreamConnection, frame: bytes, error: SbeDecodeError
    ) -> None:
        name = type(error).__name__
        self.metrics.decode_errors.labels(error=name).inc()
        self._warnings.warn(
            log,
            "undecodable frame skipped",
            {
                "connection": connection.number,
                "error": name,
                "detail": str(error),
                "frame_bytes": len(frame),
                "frame_head": frame[:16].hex(),
            },
            now_s=self._clock.monotonic(),
            key=name,
        )

    def _readmit(self, message: SbeMessage) -> None:
        """A message the quarantine let go (in arrival order): through the same path again."""
        self._publish(message, self._clock.monotonic())

    def _publish(self, message: SbeMessage, now_s: float) -> None:
        # Called for every frame: one clock read, one lookup of the stream's metrics.
        wall_s = self._clock.time()
        # Plausibility before de-duplication and gap tracking: an id or time far off must
        # not become the reference that later real events are judged against.
        facts = facts_of(message)
        if facts is not None:
            doubt = self.plausibility.check(facts, int(wall_s * US_PER_S)).doubt
            if doubt is not None:
                self.quarantine.hold(message, facts, doubt)
                return
        stream, events, duplicates = self._dedup.admit(message)
        outlet = self._outlets[stream]
        self._last_message_s[stream] = wall_s
        if duplicates:
            outlet.duplicates.inc(duplicates)
        if stream == TRADE:
            # Silence is about arrivals: a repeated trade still shows the stream is alive.
            self._silence.observe(TRADE, message.event_time_us, now_s)
        if not events:
            return
        if stream == TRADE:
            detected_us = int(wall_s * US_PER_S)
            observe = self._trade_ids.observe
            for trade in events:
                gap = observe(trade, detected_us=detected_us)  # type: ignore[arg-type]
                if gap is not None:
                    self._emit_gap(gap)
        elif stream == DEPTH:
            detected_us = int(wall_s * US_PER_S)
            gap = self._depth_chain.observe(message, detected_us=detected_us)  # type: ignore[arg-type]
            if gap is not None:
                self._emit_gap(gap)
        self.sink.publish(outlet.bus_kind, events)
        outlet.events.inc(len(events))

    def _emit_gap(self, record: GapRecord) -> None:
        self.metrics.gaps.labels(kind=str(record.kind)).inc()
        log.warning("gap detected", extra={"gap": record.to_fields()})
        self.sink.gap(record)

    def _now_us(self) -> int:
        return int(self._clock.time() * US_PER_S)


class _Outlet(NamedTuple):
    """Where one SBE stream's events go: its bus stream, and its metrics (label resolved)."""

    bus_kind: str
    events: Counter
    duplicates: Counter

    @classmethod
    def of(cls, stream: str, metrics: Metrics) -> _Outlet:
        return cls(
            BUS_KIND[stream],
            metrics.events.labels(stream=stream),
            metrics.duplicates.labels(stream=stream),
        )


def _describe(error: BaseException) -> str:
    # Only the status for a refused handshake: the exception's text is safe (no request
    # headers, so no API key), but the status says why.
    if isinstance(error, aiohttp.WSServerHandshakeError):
        if error.status != 101:
            return f"HTTP {error.status} at the handshake"
        return f"invalid handshake response: {error.message}"  # upgraded, but not as agreed
    return f"{type(error).__name__}: {error}"
