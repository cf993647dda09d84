"""The features role: bus in, local order book and per-second features out to Redis.

Per batch read from the bus, events are applied in exchange-time order:

* trades are checked for id continuity and folded into aggregate trades (the lake's grain,
  ``features.fills``); a jump in trade ids holds the seconds from the gap on while the
  missing trades are fetched by id over REST, so no trade is missing from a live bar;
* depth diffs and ``@depth20`` pictures drive Binance's book procedure
  (``market.book_sync``): buffered diffs, a REST snapshot, the continuity check, the
  cross-check at equal update ids; a book out of sync is marked invalid until resynced;
* best bid/asks carry the spread into the bars.

Warm-up: the longest window is 60 s, so a cold engine would publish incomplete vectors for
a minute after every start. Instead the role waits for the first live trade, fetches the
aggregate trades of the ``warmup_s`` seconds before it over REST (the lake's own rows), and
feeds them first; the live trades after them are checked for continuity by id as always.
The first vectors it publishes are already complete, and equal the lake's.

A second closes once a later trade has arrived and every stream has moved
``close_grace_ms`` past its end, or after two quiet seconds (``features.watermark``). Its bar
goes through the one feature engine (contract v1), and the hot state is written in one
transaction. After a gap, once the book is resynced and the
trades are recovered, the whole state is swapped in with one re-anchor (``state.writer``).
A trade that still arrives after its second closed (a stalled stream catching up, trades
recovered after a reconnect) is folded into that second if it is within the last five
minutes, and the vectors from it on are recomputed and re-anchored (``features.correction``).
When Redis is unreachable the role keeps computing and keeps the last five minutes of
vectors; the first write after Redis returns is a re-anchor of all of them.

Nothing read from the bus is trusted more than ingest trusts the exchange: every event goes
through the same plausibility policy (``market.plausibility``) before it can move the
clock, the trade ids or the book, since any writer of the bus streams can be wrong. The
work of one batch is bounded whatever the times say: a long run of empty seconds is
materialised only as far as the engine's windows and the hot state's history need
(``BarBuilder(keep_quiet_s=HISTORY_TTL_S)``), and every queue the role keeps has a size.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections import deque
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from realtime.binance.errors import BinanceError
from realtime.binance.rest import AggTradePager, BinanceRestClient
from realtime.bus.codec import BusEvent
from realtime.bus.reader import BusReader
from realtime.features.bars import US_PER_SECOND, Bar, BarBuilder
from realtime.features.correction import LateTradeCorrector
from realtime.features.fills import FillAggregator
from realtime.features.watermark import SecondClock
from realtime.log_throttle import WarningThrottle
from realtime.market.book_sync import (
    BookSynchroniser,
    CrossCheck,
    DiffOutcome,
    SnapshotOutcome,
    SyncState,
)
from realtime.market.events import AggTrade, BestBidAsk, DepthDiff, DepthSnapshot, Trade
from realtime.market.plausibility import Outcome, Plausibility, facts_of
from realtime.market.quarantine import Quarantine, plausibility_limits
from realtime.service.metrics import Metrics
from realtime.service.settings import RealtimeSettings
from realtime.state.hot_state import FeatureFlags
from realtime.state.keys import HISTORY_TTL_S, Keys
from realtime.state.writer import ClosedSecond, HotState, HotStateWriter, ReanchorBusy

log = logging.getLogger(__name__)

BarEvent = AggTrade | BestBidAsk
SNAPSHOT_LIMIT = 1000
BACKFILL_PAGE = 1000
BACKFILL_ATTEMPTS = 4
SNAPSHOT_ATTEMPTS = 5
"""Snapshots refused as too old or failed in a row before pausing ``SNAPSHOT_PAUSE_S``."""
SNAPSHOT_PAUSE_S = 10.0
BOOK_WRITE_INTERVAL_S = 0.1
"""Between closed seconds, book changes reach ``ob:{SYM}`` at most this often."""
MAX_HELD_TRADES = 100_000
"""Live trades held during warm-up or a recovery by id; beyond it they are dropped, which
the next trade shows as an id gap, recovered by REST like any other."""
MAX_BACKFILL_IDS = 100_000
"""The most trade ids recovered over REST for one gap (100 pages): the newest ones. Older
ones fall in seconds the hot state no longer keeps; the lake repairs them from the record."""
MAX_UNWRITTEN = HISTORY_TTL_S
"""Closed seconds kept for the next write while Redis is away; older ones are dropped and
the next write is a re-anchor of the history instead (which holds the same seconds)."""


def _time_key(event: Trade | BestBidAsk | DepthDiff | DepthSnapshot) -> int:
    if type(event) is Trade:
        return event.transact_time_us
    return event.event_time_us or 0


class FeaturesRole:
    def __init__(
        self,
        settings: RealtimeSettings,
        client: aioredis.Redis,
        metrics: Metrics,
        *,
        rest: BinanceRestClient | None = None,
        now_us: Callable[[], int] = lambda: time.time_ns() // 1000,
    ) -> None:
        self.settings = settings
        self.symbol = settings.symbol
        self.keys = Keys(settings.symbol)
        self.client = client
        self.metrics = metrics
        # Closed by ``run`` only when made here: a client passed in is its owner's to close.
        self._owns_rest = rest is None
        self.rest = rest or BinanceRestClient(settings.rest_url, api_key=settings.api_key)
        self.now_us = now_us
        self.reader = BusReader(client, self.keys, rejected=metrics.rejected)
        self.plausibility = Plausibility(plausibility_limits(settings))
        self.quarantine: Quarantine[BusEvent] = Quarantine(
            self.plausibility,
            self.rest,
            self.symbol,
            metrics,
            source="bus",
            readmit=self._readmit,
            wall_us=now_us,
        )
        self._warnings = WarningThrottle()
        self._held_depth = metrics.queue_depth.labels(queue="held_trades")
        self._held_dropped = metrics.queue_dropped.labels(queue="held_trades")
        self._unwritten_dropped = metrics.queue_dropped.labels(queue="unwritten_seconds")
        self.writer = HotStateWriter(client, self.keys)
        self.book = BookSynchroniser(self.symbol)
        self.fills = FillAggregator()
        self.bars = BarBuilder(keep_quiet_s=HISTORY_TTL_S)
        self.features = LateTradeCorrector(horizon_s=HISTORY_TTL_S)  # what the history keeps
        self.clock = SecondClock(settings.close_grace_ms * 1000)
        self._staged: dict[int, list[BarEvent]] = {}
        self._last_closed: int | None = None
        self._last_trade_id: int | None = None
        self._last_trade_time_us: int | None = None
        self._held_trades: list[Trade] = []
        self._backfill: asyncio.Task[list[Trade]] | None = None
        self._backfill_range: tuple[int, int] | None = None
        """The trade ids the recovery in flight fetches (a huge hole: only its newest)."""
        self._incomplete_from: int | None = None
        self._incomplete_through: int | None = None
        """Last second marked incomplete; ``None``: every second from ``_incomplete_from``."""
        self._snapshot: asyncio.Task[DepthSnapshot] | None = None
        self._snapshot_failures = 0
        self._snapshot_paused_until = 0.0
        self._history: deque[ClosedSecond] = deque(maxlen=HISTORY_TTL_S)
        self._unwritten: list[ClosedSecond] = []
        self._gap_started: float | None = None
        self._stopping = False
        self._warming = settings.warmup_s > 0
        self._warmup: asyncio.Task[list[AggTrade]] | None = None
        self._needs_reanchor = False
        self._corrected_from: int | None = None
        """The oldest published second a late trade changed, until a re-anchor writes it."""
        self._book_dirty = True
        self._book_written_s = 0.0
        self.seconds_published = 0
        self.events_applied = 0
        """Events that reached the role's state: not the repeats, not the ones held (those
        count once they are re-admitted and applied)."""
        self.reanchors = 0

    # -- the loop ----------------------------------------------------------------------------

    async def run(self) -> None:
        backoff_s = 0.05
        self._stopping = False
        try:
            while not self._stopping:
                try:
                    batches = await self.reader.read(block_ms=100)
                    backoff_s = 0.05
                except (RedisError, OSError) as error:
                    self.metrics.redis_errors.labels(role="features").inc()
                    log.warning("bus read failed", extra={"error": repr(error)})
                    self._needs_reanchor = True  # Redis may have lost the hot state
                    await asyncio.sleep(backoff_s)
                    backoff_s = min(2 * backoff_s, 2.0)
                    batches = []
                self.apply_batches(batches)
                self._collect_tasks()
                self._start_tasks()
                await self.publish()
        finally:
            await self.quarantine.close()
            if self._owns_rest:
                await self.rest.close()

    def stop(self) -> None:
        """End ``run`` after the read in flight (≤ 100 ms). Cancelling instead can hang:
        redis-py's asyncio client may swallow a cancellation during a blocking XREAD."""
        self._stopping = True

    def apply_batches(self, batches: list[tuple[str, list]]) -> None:
        """Apply one read's events in exchange-time order (each stream is already ordered).

        Each event is judged first: a repeat (read again after a bus rewind) is skipped, a
        doubted one waits in the quarantine for the exchange's word.
        """
        streams = [events for _, events in batches]
        if not streams:
            self._close_ready()
            return
        merged = streams[0] if len(streams) == 1 else heapq.merge(*streams, key=_time_key)
        wall_us = self.now_us()
        check = self.plausibility.check
        applied = 0
        for event in merged:
            facts = facts_of(event)
            if facts is not None:
                outcome, doubt = check(facts, wall_us)
                if doubt is not None:
                    self.quarantine.hold(event, facts, doubt)
                    continue
                if outcome is Outcome.REPEAT:
                    continue
            kind = type(event)
            if kind is Trade:
                self._on_trade(event)
            elif kind is DepthDiff:
                self._on_diff(event)
            elif kind is BestBidAsk:
                self.clock.observe(event.event_time_us)
                self._stage(event.event_time_us, event)
            elif kind is DepthSnapshot:
                self._on_depth20(event)
            applied += 1
        self.events_applied += applied
        self._close_ready()

    def _readmit(self, event: BusEvent) -> None:
        """An event the quarantine let go (in arrival order): judged again, then applied."""
        self.apply_batches([("readmitted", [event])])

    # -- trades ------------------------------------------------------------------------------

    def _on_trade(self, trade: Trade) -> None:
        self.clock.observe(trade.transact_time_us, trade=True)
        if self._warming:
            if self._warmup is None:
                self._warmup = asyncio.create_task(self._fetch_warmup(trade))
            self._hold(trade)
            return
        if self._backfill is not None:
            self._hold(trade)
            return
        last = self._last_trade_id
        if last is not None and trade.trade_id <= last:
            return  # re-read after a bus rewind, or recovered already
        if last is not None and trade.trade_id > last + 1:
            self._start_backfill(last + 1, trade.trade_id - 1)
            self._hold(trade)
            return
        self._feed_trade(trade)

    def _hold(self, trade: Trade) -> None:
        """Keep a live trade until warm-up or recovery is done; bounded (``MAX_HELD_TRADES``)."""
        if len(self._held_trades) >= MAX_HELD_TRADES:
            # Dropping the newest leaves a hole the next trade after the recovery shows as
            # an id gap, so these are fetched by id like any other missed trade.
            self._held_dropped.inc()
            self._warn("held trades full; trade dropped", trade_id=trade.trade_id)
            return
        self._held_trades.append(trade)
        self._held_depth.set(len(self._held_trades))

    def _take_held(self) -> list[Trade]:
        held, self._held_trades = self._held_trades, []
        self._held_depth.set(0)
        return held

    def _warn(self, message: str, **extra: object) -> None:
        self._warnings.warn(log, message, extra, now_s=time.monotonic())

    def _feed_trade(self, trade: Trade) -> None:
        self._last_trade_id = trade.trade_id
        self._last_trade_time_us = trade.transact_time_us
        done = self.fills.add(trade)
        if done is not None:
            self._stage(done.transact_time_us, done)

    async def _fetch_warmup(self, first_live: Trade) -> list[AggTrade]:
        """Aggregate trades from ``warmup_s`` before the first live trade up to it."""
        start_us = (
            first_live.transact_time_us // US_PER_SECOND - self.settings.warmup_s
        ) * US_PER_SECOND
        pager = AggTradePager(
            self.rest,
            self.symbol,
            start_time_us=start_us,
            end_time_us=first_live.transact_time_us,
        )
        aggs: list[AggTrade] = []
        try:
            async for page in pager:
                aggs.extend(agg for agg in page if agg.last_trade_id < first_live.trade_id)
        except (BinanceError, OSError, TimeoutError) as error:
            log.warning("warm-up failed; starting cold", extra={"error": repr(error)})
            return []
        return aggs

    def _finish_warmup(self, aggs: list[AggTrade]) -> None:
        self._warming = False
        self._warmup = None
        for agg in aggs:
            self._stage(agg.transact_time_us, agg)
        if aggs:
            self._last_trade_id = aggs[-1].last_trade_id
            self._last_trade_time_us = aggs[-1].transact_time_us
        log.info("warm-up done", extra={"agg_trades": len(aggs)})
        for trade in self._take_held():
            self._on_trade(trade)
        self._close_ready()

    def _start_backfill(self, first_id: int, last_id: int) -> None:
        hold_from = (self._last_trade_time_us or 0) // US_PER_SECOND
        self.clock.hold_from_sec = hold_from
        self._gap_started = self._gap_started or time.monotonic()
        log.warning(
            "trade ids skipped; recovering them by id",
            extra={"first_id": first_id, "last_id": last_id, "hold_from_sec": hold_from},
        )
        # A huge hole (a long outage) is recovered only in its newest ids: older trades fall
        # in seconds the hot state no longer keeps, and the lake repairs them from the gap.
        fetch_from = max(first_id, last_id - MAX_BACKFILL_IDS + 1)
        if fetch_from > first_id:
            log.warning(
                "trade ids too old to recover live; left to the lake",
                extra={"first_id": first_id, "last_id": fetch_from - 1},
            )
        self._backfill_range = (fetch_from, last_id)
        self._backfill = asyncio.create_task(self._fetch_trades(fetch_from, last_id))

    async def _fetch_trades(self, first_id: int, last_id: int) -> list[Trade]:
        recovered: list[Trade] = []
        attempts = 0
        next_id = first_id
        while next_id <= last_id:
            try:
                page = await self.rest.historical_trades(
                    self.symbol, from_id=next_id, limit=min(BACKFILL_PAGE, last_id - next_id + 1)
                )
            except (BinanceError, OSError, TimeoutError) as error:
                attempts += 1
                if attempts >= BACKFILL_ATTEMPTS:
                    log.error("trade recovery gave up", extra={"error": repr(error)})
                    break
                await asyncio.sleep(0.2 * 2**attempts)
                continue
            page = [trade for trade in page if next_id <= trade.trade_id <= last_id]
            if page and page[0].trade_id == next_id:
                attempts = 0  # the limit is on failures in a row, not over a long recovery
            if not page or page[0].trade_id != next_id:
                attempts += 1  # withheld or not yet visible: retry, then give up
                if attempts >= BACKFILL_ATTEMPTS:
                    log.error("trade recovery incomplete", extra={"missing_from": next_id})
                    break
                await asyncio.sleep(0.2 * 2**attempts)
                continue
            contiguous = [page[0]]
            for trade in page[1:]:
                if trade.trade_id != contiguous[-1].trade_id + 1:
                    break
                contiguous.append(trade)
            recovered.extend(contiguous)
            next_id = contiguous[-1].trade_id + 1
        return recovered

    def _finish_backfill(self, recovered: list[Trade]) -> None:
        assert self._backfill_range is not None
        first_id, last_id = self._backfill_range
        complete = (
            bool(recovered)
            and recovered[0].trade_id == first_id
            and recovered[-1].trade_id == last_id
        )
        self.metrics.backfilled_trades.inc(len(recovered))
        abandoned = self._last_trade_id is not None and first_id > self._last_trade_id + 1
        if complete and abandoned:
            # The ids below the fetched range were given up on: only the seconds they can
            # fall in (up to the first recovered trade's) lack trades.
            self._incomplete_from = self.clock.hold_from_sec
            self._incomplete_through = recovered[0].transact_time_us // US_PER_SECOND
        elif not complete:
            self._incomplete_from = self.clock.hold_from_sec
            self._incomplete_through = None
            log.error(
                "trades missing from the live bars",
                extra={"first_id": first_id, "last_id": last_id, "recovered": len(recovered)},
            )
        self._backfill = None
        self._backfill_range = None
        self.clock.hold_from_sec = None
        held = self._take_held()
        for trade in recovered:
            self._feed_trade(trade)
        if not complete:
            self._last_trade_id = last_id  # accept the hole; the lake repairs it from REST
        self._needs_reanchor = True
        for trade in held:
            self._on_trade(trade)
        self._close_ready()

    # -- the book ----------------------------------------------------------------------------

    def _on_diff(self, diff: DepthDiff) -> None:
        self.clock.observe(diff.event_time_us)
        was_synced = self.book.state is SyncState.SYNCED
        outcome = self.book.on_diff(diff)
        if outcome in (DiffOutcome.GAP, DiffOutcome.CROSS_CHECK_FAILED) or (
            was_synced and self.book.state is not SyncState.SYNCED
        ):
            self._book_lost(outcome.value)
        self._book_dirty = True

    def _on_depth20(self, picture: DepthSnapshot) -> None:
        if picture.event_time_us:
            self.clock.observe(picture.event_time_us)
        if self.book.cross_check_depth20(picture) is CrossCheck.MISMATCHED:
            self._book_lost("depth20 cross-check")

    def _book_lost(self, reason: str) -> None:
        log.warning("order book out of sync; resynchronising", extra={"reason": reason})
        self._gap_started = self._gap_started or time.monotonic()
        self._needs_reanchor = True
        self._book_dirty = True

    async def _fetch_snapshot(self) -> DepthSnapshot:
        return await self.rest.depth(self.symbol, limit=SNAPSHOT_LIMIT)

    def _finish_snapshot(self, task: asyncio.Task[DepthSnapshot]) -> None:
        try:
            snapshot = task.result()
        except (BinanceError, OSError, TimeoutError) as error:
            outcome = None
            log.warning("depth snapshot failed", extra={"error": repr(error)})
        else:
            outcome = self.book.on_snapshot(snapshot)
        if outcome in (SnapshotOutcome.SYNCED, SnapshotOutcome.PENDING):
            self._snapshot_failures = 0
        else:
            self._snapshot_failures += 1
            if self._snapshot_failures >= SNAPSHOT_ATTEMPTS:
                self._snapshot_paused_until = time.monotonic() + SNAPSHOT_PAUSE_S
                self._snapshot_failures = 0
        self._book_dirty = True

    # -- tasks -------------------------------------------------------------------------------

    def _collect_tasks(self) -> None:
        if self._warmup is not None and self._warmup.done():
            self._finish_warmup(self._warmup.result())
        if self._backfill is not None and self._backfill.done():
            self._finish_backfill(self._backfill.result())
        if self._snapshot is not None and self._snapshot.done():
            task, self._snapshot = self._snapshot, None
            self._finish_snapshot(task)

    def _start_tasks(self) -> None:
        if (
            self._snapshot is None
            and self.book.needs_snapshot
            and self.book.buffered_count > 0
            and time.monotonic() >= self._snapshot_paused_until
        ):
            self._snapshot = asyncio.create_task(self._fetch_snapshot())

    # -- bars and features -------------------------------------------------------------------

    def _stage(self, time_us: int, event: BarEvent) -> None:
        second = time_us // US_PER_SECOND
        if self._last_closed is not None and second <= self._last_closed:
            self._late(event)
            return
        self._staged.setdefault(second, []).append(event)

    def _late(self, event: BarEvent) -> None:
        """An event for a second already closed: a trade corrects it (``features.correction``)
        if it is within the horizon; a best bid/ask is dropped, as the next one supersedes it."""
        if type(event) is AggTrade:
            try:
                if self.features.fold(event):
                    return
            except ValueError as error:  # ids the second holds: counting them again is wrong
                self._warn("late trade already in its second", error=str(error))
        self.metrics.late_events.inc()

    def _close_ready(self) -> None:
        if self._warming:
            return
        through = self.clock.closable_through()
        if through is None or (self._last_closed is not None and through <= self._last_closed):
            return
        done = self.fills.flush_through(through)
        if done is not None:
            self._stage(done.transact_time_us, done)
        closed: list[Bar] = []
        tails: dict[int, AggTrade] = {}
        for second in sorted(s for s in self._staged if s <= through):
            for event in self._staged.pop(second):
                if isinstance(event, AggTrade):
                    closed += self.bars.add_agg_trade(event)
                    tails[second] = event  # staged in id order: the last is the highest
                else:
                    closed += self.bars.add_quote(event)
        self._last_closed = through
        closed += self.bars.close_through(through)
        kept_from = through - HISTORY_TTL_S  # older seconds: engine state only, never written
        for bar in closed:
            vector = self.features.close(bar, tails.get(bar.ts_sec))
            if bar.ts_sec <= kept_from:
                continue
            complete = (
                self._incomplete_from is None
                or bar.ts_sec < self._incomplete_from
                or (self._incomplete_through is not None and bar.ts_sec > self._incomplete_through)
            )
            flags = FeatureFlags(self.book.state is SyncState.SYNCED, complete)
            second = ClosedSecond(bar.ts_sec, vector, flags)
            self._history.append(second)
            self._unwritten.append(second)
        if self._backfill is None:
            self._incomplete_from = self._incomplete_through = None
        if len(self._unwritten) > MAX_UNWRITTEN:
            dropped = len(self._unwritten) - MAX_UNWRITTEN
            del self._unwritten[:dropped]
            self._unwritten_dropped.inc(dropped)
            self._needs_reanchor = True  # the history holds them; write it whole
            self._warn("unwritten seconds over the limit; oldest dropped", dropped=dropped)

    # -- publishing --------------------------------------------------------------------------

    def _state(self, seconds: list[ClosedSecond]) -> HotState:
        synced = self.book.state is SyncState.SYNCED
        return HotState(
            seconds=seconds,
            recent_bars=self.features.recent_bars(5),
            book=self.book.book,
            book_valid=synced,
            exchange_time_us=self.clock.newest_us or 0,
            now_us=self.now_us(),
        )

    @property
    def recovering(self) -> bool:
        return self._backfill is not None or self.book.state is not SyncState.SYNCED

    async def publish(self) -> None:
        self._apply_corrections()
        corrected_from = self._corrected_from
        if not self._unwritten and not self._book_dirty and corrected_from is None:
            return
        if (
            not self._unwritten
            and not self._needs_reanchor
            and corrected_from is None
            and time.monotonic() - self._book_written_s < BOOK_WRITE_INTERVAL_S
        ):
            return  # the book alone changed: ob:{SYM} is refreshed at most 10 times a second
        try:
            if self._needs_reanchor and not self.recovering and self._history:
                await self.writer.reanchor(self._state(list(self._history)))
                self._finish_reanchor()
                self._corrected_from = None
            elif corrected_from is not None:
                # Corrected seconds were published: swap them in with everything after them
                # at once. It does not wait for a recovery: the book's state is written as
                # it is, as by any write, and the recovery's own re-anchor still follows.
                seconds = [closed for closed in self._history if closed.ts_sec >= corrected_from]
                await self.writer.reanchor(self._state(seconds))
                self._corrected_from = None
                self.reanchors += 1
                self.metrics.reanchors.inc()
            elif self._unwritten or self._book_dirty:
                await self.writer.write(self._state(self._unwritten))
        except ReanchorBusy:
            log.warning("re-anchor lock held by another writer; retrying")
            return
        except (RedisError, OSError) as error:
            self.metrics.redis_errors.labels(role="features").inc()
            self._needs_reanchor = True
            log.warning(
                "hot state write failed; kept for the next write", extra={"error": repr(error)}
            )
            return
        self._book_written_s = time.monotonic()
        self.seconds_published += len(self._unwritten)
        self.metrics.seconds_closed.inc(len(self._unwritten))
        self._unwritten = []
        self._book_dirty = False
        self.metrics.book_valid.set(1 if self.book.state is SyncState.SYNCED else 0)

    def _apply_corrections(self) -> None:
        """Recompute the seconds late trades changed (once for all folded since the last
        write) and swap them in: in place where unwritten, else by the next re-anchor, so
        readers see the corrected history whole, never a mix with the one it replaces."""
        corrected = self.features.recompute()
        if not corrected:
            return
        vectors = {second.ts_sec: second.vector for second in corrected}
        unwritten = self._unwritten
        for index in range(len(unwritten)):
            vector = vectors.get(unwritten[index].ts_sec)
            if vector is not None:
                unwritten[index] = unwritten[index]._replace(vector=vector)
        history = self._history
        for index in range(len(history)):
            vector = vectors.get(history[index].ts_sec)
            if vector is not None:
                history[index] = history[index]._replace(vector=vector)
        published = vectors.keys() - {closed.ts_sec for closed in unwritten}
        if published:
            oldest = min(published)
            if self._corrected_from is None or oldest < self._corrected_from:
                self._corrected_from = oldest
        self.metrics.seconds_corrected.inc(len(corrected))
        log.info(
            "late trades folded into closed seconds",
            extra={"first_sec": corrected[0].ts_sec, "seconds": len(corrected)},
        )

    def _finish_reanchor(self) -> None:
        self.reanchors += 1
        self.metrics.reanchors.inc()
        if self._gap_started is not None:
            self.metrics.reanchor_seconds.observe(time.monotonic() - self._gap_started)
        log.info("hot state re-anchored", extra={"seconds": len(self._history)})
        self._gap_started = None
        self._needs_reanchor = False
