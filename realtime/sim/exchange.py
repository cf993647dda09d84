"""The local Binance-compatible exchange: one market, one port, REST + SBE streams + archives.

``LocalExchange`` plays a ``MarketSource``: the first ``history_s`` seconds become the past
at once (on the tape, in the book, in the archive files); then the live part is played at
``speed`` (1 = real time, N = N times faster, ``math.inf`` = as fast as the subscribers
read, 0 = paused, moved only by ``advance_to``). Each event is applied to the exchange's
state first and then framed, so a REST answer never lags the stream it is compared with.

Use it as an async context manager; it listens on a free port unless told one::

    async with LocalExchange(MarketModel(MarketParams(seed=1)), ExchangeConfig()) as exchange:
        client = BinanceRestClient(exchange.rest_url)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from realtime.binance.sbe.encode import encode
from realtime.clock import Clock, SystemClock
from realtime.market.events import DepthDiff, DepthSnapshot, TradeBatch
from realtime.sim.faults import Fault, FaultKind, FaultSpecError, parse_fault
from realtime.sim.market_state import MarketState
from realtime.sim.request_limits import RequestLimiter
from realtime.sim.rest_api import RestApi
from realtime.sim.source import MarketSource, SourceEvent
from realtime.sim.streams import StreamHub, StreamRules, UnknownStream
from realtime.sim.synthetic_trades import MIN_QTY_E8, TICK_E8

log = logging.getLogger(__name__)

UNLIMITED = math.inf
DEPTH20_LEVELS = 20
# Below this, waiting for an event's due time costs more than the lateness it avoids.
_MIN_SLEEP_S = 0.001


@dataclass(frozen=True)
class ExchangeConfig:
    """How the exchange serves its market; safe local defaults."""

    host: str = "127.0.0.1"
    port: int = 0
    speed: float = 1.0
    history_s: float = 0.0
    weight_limit: int | None = 6000
    ban_after: int = 5
    ban_s: float = 120.0
    stream_rules: StreamRules = field(default_factory=StreamRules)
    depth20_interval_us: int = 50_000
    price_exponent: int = -8
    qty_exponent: int = -8
    tick_size_e8: int = TICK_E8
    step_size_e8: int = MIN_QTY_E8
    faults: tuple[Fault, ...] = ()
    """Scripted faults, each with ``at_s`` = market seconds after the live start."""


def event_time_us(event: SourceEvent) -> int:
    return event.event_time_us


class LocalExchange:
    """A Binance-compatible server over one market source."""

    def __init__(
        self, source: MarketSource, config: ExchangeConfig | None = None, clock: Clock | None = None
    ) -> None:
        self.source = source
        self.config = config or ExchangeConfig()
        if self.config.speed < 0:
            raise ValueError(
                f"speed must be >= 0 (0 = paused, inf = unlimited), got {self.config.speed}"
            )
        # The market's clock: pacing, REST weight minutes and server time. Stream keep-alive
        # runs on wall time whatever this is, since it is about real sockets.
        self.clock = clock or SystemClock()
        self.symbol = source.symbol
        self.stream_prefix = source.symbol.lower()
        self.market = MarketState(
            source.symbol,
            source.first_agg_trade_id,
            source.initial_book(),
            tick_size_e8=self.config.tick_size_e8,
            step_size_e8=self.config.step_size_e8,
            now_us=self.now_us,
        )
        self.hub = StreamHub(
            source.symbol, self.config.stream_rules, now_ms=lambda: self.now_us() // 1000
        )
        self.limiter = RequestLimiter(
            self.clock,
            weight_limit=self.config.weight_limit,
            ban_after=self.config.ban_after,
            ban_s=self.config.ban_s,
        )
        self.rest = RestApi(self.market, self.limiter)
        self._exponents = {
            "price_exponent": self.config.price_exponent,
            "qty_exponent": self.config.qty_exponent,
        }
        self.exhausted = False
        self.history_end_us: int | None = None
        self.events_played = 0
        self._pending: deque[SourceEvent] = deque()
        self._scripted = sorted(self.config.faults, key=lambda fault: fault.at_s or 0.0)
        self._live_start_us = 0
        self._live_start_mono = 0.0
        self._next_depth20_us = 0
        self._runner: web.AppRunner | None = None
        self._pump: asyncio.Task[None] | None = None
        self._port: int | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    async def __aenter__(self) -> LocalExchange:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Load the history, listen, and start playing the live market."""
        self._load_history()
        app = web.Application()
        app.add_routes(self.rest.routes())
        app.add_routes(
            [
                web.get("/ws", self.hub.handle),
                web.get("/ws/{stream:.*}", self.hub.handle),
                web.get("/stream", self.hub.handle),
                web.get("/admin/status", self._admin_status),
                web.post("/admin/faults", self._admin_add_faults),
                web.delete("/admin/faults", self._admin_clear_faults),
            ]
        )
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        self._port = self._runner.addresses[0][1]
        self._live_start_mono = self.clock.monotonic()
        if self.config.speed > 0:
            self._pump = asyncio.create_task(self._play(math.inf), name="exchange-pump")

    async def stop(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        await self.hub.close_all()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the exchange is not started")
        return self._port

    @property
    def rest_url(self) -> str:
        """Base URL for ``BinanceRestClient`` (paths ``/api/v3/...``)."""
        return f"http://{self.config.host}:{self.port}"

    @property
    def archive_url(self) -> str:
        """Base URL for ``ArchiveClient`` (paths ``/data/spot/...``)."""
        return self.rest_url

    @property
    def stream_url(self) -> str:
        """Base URL for streams: ``/ws/<stream>`` and ``/stream?streams=a/b``."""
        return f"ws://{self.config.host}:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"{self.rest_url}/admin"

    def stream(self, kind: str) -> str:
        """The stream name of this market for ``kind`` (trade, bestBidAsk, depth, depth20)."""
        return f"{self.stream_prefix}@{kind}"

    # -- the market clock ------------------------------------------------------------------------

    def now_us(self) -> int:
        """Market time: the history's end, then advancing with the live play."""
        played = self.market.last_event_us or 0
        base = max(self.history_end_us or 0, played)
        speed = self.config.speed
        if 0 < speed < math.inf and self._runner is not None:
            elapsed_s = self.clock.monotonic() - self._live_start_mono
            return max(base, self._live_start_us + int(elapsed_s * speed * 1_000_000))
        return base

    # -- playing ---------------------------------------------------------------------------------

    def _load_history(self) -> None:
        first = self._peek()
        if first is None:
            self.history_end_us = 0
            return
        start_us = event_time_us(first) // 1_000_000 * 1_000_000
        self.history_end_us = start_us + int(self.config.history_s * 1_000_000)
        while (event := self._peek()) is not None and event_time_us(event) < self.history_end_us:
            self._pending.popleft()
            self.market.apply(event)
            self.events_played += 1
        self._live_start_us = self.history_end_us
        self._next_depth20_us = self.history_end_us
        log.info(
            "history loaded: %d trades up to %d us", len(self.market.tape), self.history_end_us
        )

    def _peek(self) -> SourceEvent | None:
        while not self._pending:
            if self.exhausted:
                return None
            events = self.source.next_events()
            if events is None:
                self.exhausted = True
                return None
            self._pending.extend(events)
        return self._pending[0]

    async def advance_to(self, market_time_us: int) -> None:
        """Play every event before ``market_time_us`` now (a paused exchange's only motion)."""
        if self.config.speed != 0:
            raise RuntimeError("advance_to drives a paused exchange (speed=0) only")
        await self._play(market_time_us)
        self.market.last_event_us = max(self.market.last_event_us or 0, market_time_us - 1)

    async def _play(self, until_us: float) -> None:
        speed = self.config.speed
        while (event := self._peek()) is not None:
            time_us = event_time_us(event)
            if time_us >= until_us:
                return
            self._arm_scripted_faults(time_us)
            if speed == UNLIMITED:
                await self.hub.wait_for_subscribers()
            elif speed > 0:
                due = self._live_start_mono + (time_us - self._live_start_us) / 1e6 / speed
                wait_s = due - self.clock.monotonic()
                if wait_s > _MIN_SLEEP_S:
                    await self.clock.sleep(wait_s)
            self._pending.popleft()
            self.market.apply(event)
            self.events_played += 1
            await self._publish(event, backpressure=speed == UNLIMITED)
            if self.events_played % 256 == 0:
                await asyncio.sleep(0)  # let REST and the sockets in between events

    async def _publish(self, event: SourceEvent, *, backpressure: bool) -> None:
        hub = self.hub
        exponents = self._exponents
        if isinstance(event, TradeBatch):
            stream = self.stream("trade")
            if hub.subscribers(stream):
                # One trade a frame: what live BTCUSDT frames carry (SPEC 1.7).
                for trade in event.trades:
                    single = TradeBatch(
                        event.symbol, event.event_time_us, event.transact_time_us, (trade,)
                    )
                    await hub.publish(
                        stream, encode(single, **exponents), backpressure=backpressure
                    )
        elif isinstance(event, DepthDiff):
            stream = self.stream("depth")
            if hub.subscribers(stream):
                await hub.publish(stream, encode(event, **exponents), backpressure=backpressure)
            if event.event_time_us >= self._next_depth20_us:
                interval = self.config.depth20_interval_us
                self._next_depth20_us = (
                    event.event_time_us - event.event_time_us % interval + interval
                )
                stream = self.stream("depth20")
                if hub.subscribers(stream):
                    bids, asks = self.market.book.top(DEPTH20_LEVELS)
                    snapshot = DepthSnapshot(
                        self.symbol,
                        event.event_time_us,
                        self.market.book.last_update_id,
                        tuple(bids),
                        tuple(asks),
                    )
                    await hub.publish(
                        stream, encode(snapshot, **exponents), backpressure=backpressure
                    )
        else:
            stream = self.stream("bestBidAsk")
            if hub.subscribers(stream):
                await hub.publish(stream, encode(event, **exponents), backpressure=backpressure)

    # -- faults ----------------------------------------------------------------------------------

    def apply_fault(self, fault: Fault) -> None:
        """Apply one fault now, wherever it acts (streams, REST, archive files)."""
        if fault.kind in (FaultKind.REST_STATUS, FaultKind.WITHHOLD, FaultKind.CORRUPT_ARCHIVE):
            self.market.rest_faults.arm(fault)
        elif fault.kind is FaultKind.CLEAR:
            self.market.rest_faults.clear()
            self.hub.clear_faults()
        else:
            self.hub.apply_fault(fault)
        log.info("fault applied: %s", fault)

    def _arm_scripted_faults(self, time_us: int) -> None:
        while self._scripted:
            at_us = self._live_start_us + int((self._scripted[0].at_s or 0.0) * 1_000_000)
            if time_us < at_us:
                return
            self.apply_fault(self._scripted.pop(0))

    # -- admin endpoint --------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        tape = self.market.tape
        trades = tape.trades()
        return {
            "symbol": self.symbol,
            "market_time_us": self.now_us(),
            "history_end_us": self.history_end_us,
            "speed": "unlimited" if self.config.speed == UNLIMITED else self.config.speed,
            "exhausted": self.exhausted and not self._pending,
            "events_played": self.events_played,
            "trades": len(trades.trade_id),
            "last_trade_id": int(trades.trade_id[-1]) if len(trades.trade_id) else None,
            "last_agg_trade_id": tape.next_agg_trade_id - 1,
            "book_update_id": self.market.book.last_update_id,
            "connections": len(self.hub.connections),
            "frames_sent": self.hub.frames_sent,
            "closed_connections": dict(self.hub.closed_reasons),
            "rest_requests": self.rest.requests,
            "rest_refused": self.rest.refused,
            "archive_days": [day.isoformat() for day in self.market.archive_days()],
        }

    async def _admin_status(self, request: web.Request) -> web.Response:
        return web.json_response(self.status())

    async def _admin_add_faults(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            specs: Sequence[Any] = body if isinstance(body, list) else [body]
            faults = [parse_fault(spec) for spec in specs]
            for fault in faults:
                self.apply_fault(fault)
        except (ValueError, FaultSpecError, UnknownStream) as error:
            return web.json_response({"error": str(error)}, status=400)
        return web.json_response({"applied": len(faults)})

    async def _admin_clear_faults(self, request: web.Request) -> web.Response:
        self.apply_fault(Fault(FaultKind.CLEAR))
        return web.json_response({"cleared": True})


def faults_from_json(text: str) -> tuple[Fault, ...]:
    """A fault script: a JSON list of faults, each with ``at_s``."""
    specs = json.loads(text)
    if not isinstance(specs, list):
        raise FaultSpecError("a fault script is a JSON list of faults")
    return tuple(parse_fault(spec) for spec in specs)
