"""The local exchange's seeded market: an event-driven limit order book on the 0.01 tick.

What happens, one event at a time (``docs/local_exchange_calibration.md`` has the numbers):

- Market activity is a self-exciting (Hawkes) point process with an exponential kernel,
  simulated exactly. Each event is a taker order or a maker action, in proportion to their
  intensities, which share the excitation: maker activity co-moves with the trade rate.
  A taker order excites in proportion to its size (large orders start bursts, partly of
  more taker orders); a maker action is a small batch of updates at one time.
- A taker order (heavy-tailed size) walks the opposite side from the best level, filling
  the resting maker orders oldest first: one ``TradeBatch`` per taker order, one trade per
  maker order filled. It never takes a side's last level.
- A maker update places an order (joining the best, or log-normally far behind it),
  cancels one (the newest at the best, or at a rank log-uniform behind it, so the top stays
  sparse), pulls a whole best level (the price jumps), or, while the spread is wider than
  a tick, refills it, mostly next to the opposite best from the side that stayed (the price
  follows the move). Placements and cancellations balance so that each side holds about
  ``levels_per_side`` levels over about 1 % of the price.
- Book update ids: one per change of one price level. A placement or a cancellation is one
  id; a taker order takes one id per level it fills (its levels change one after another,
  at one time). A ``BestBidAsk`` follows every update that changes the top of the book.
  Every ``diff_interval_us`` (aligned to the clock) the interval's changes are netted into
  one ``DepthDiff`` stamped at the interval's last microsecond; quiet intervals send none.
- Planted signal (``signal_strength > 0``): a latent pressure, an AR(1) process on a one
  second grid, tilts the taker side now and, ``PRESSURE_LAG_S`` later, makes makers pull
  the best level ahead of the move and refill the spread from the side it favours: taker
  volume imbalance leads the mid-price return over the next seconds.

Deterministic: the same ``MarketParams`` give the same events, whatever the slicing, since
every random draw is consumed in event order from one ``numpy`` generator (the pressure has
its own, so its path does not depend on the strength).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from realtime.market.events import BestBidAsk, DepthDiff, DepthSnapshot, Trade, TradeBatch
from realtime.sim.market_book import ASK, BID, SIGN, LimitOrderBook
from realtime.sim.source import SourceEvent
from realtime.sim.synthetic_trades import MIN_QTY_E8, TICK_E8

E8 = 10**8
US_PER_S = 1_000_000
WARM_UP_S = 120
"""Market time run before the start, so the first event finds a book in its steady state."""

# Order sizes, read off the 2023-04-05 BTCUSDT capture (docs/local_exchange_calibration.md).
TAKER_QTY_MEDIAN_E8 = 350_000
"""0.0035 BTC: the median taker order."""
TAKER_QTY_SIGMA_BELOW = 1.25
TAKER_QTY_SIGMA_ABOVE = 2.3
"""Log-normal spreads below and above the median: small orders bunch up, large ones spread
far (p90 ~0.07 BTC, p99 ~0.7 BTC)."""
TAKER_QTY_MAX_E8 = 12 * E8
TAKER_EXCITATION_REF_E8 = 5_000_000
"""0.05 BTC: a taker order of this size triggers ``taker_excitation`` events."""
TAKER_EXCITATION_CAP = 50.0
"""Cap of the size multiplier, so that one huge order cannot set off an endless burst."""
MAKER_QTY_MEDIAN_E8 = 10_000_000
MAKER_QTY_SIGMA = 1.5
"""Orders resting behind the best: log-normal, median 0.1 BTC."""
TOP_QTY_MEDIAN_E8 = 5_000_000
TOP_QTY_SIGMA = 2.4
"""Orders joining or refilling the best: many small quotes and a few large ones, so the best
holds a few BTC in many orders and large takers fill against several of them."""
MAKER_QTY_MAX_E8 = 20 * E8

# Where makers act.
PLACE_DISTANCE_MEDIAN = 4e-4
PLACE_DISTANCE_SIGMA = 2.0
"""Distance behind the best of placements off the top: log-normal, median 4 bp of the price
(39 USDT at 98,000). Relative, so the book is as sparse in ticks at any price."""
BOOK_SPAN = 0.01
"""Placements stay within 1 % of the price behind the best."""
JOIN_BEST_SHARE = 0.25
"""Share of placements that join the best level."""
CANCEL_BEST_SHARE = 0.05
"""Share of cancellations that take the most recent order at the best."""
MAKER_BATCH_CONTINUE = 0.5
"""A maker action is a batch of updates at one time (a ladder being requoted): each update
is followed by another with this probability (mean batch 2)."""
PULL_BASE_SHARE = 0.006
"""Share of maker actions that withdraw a whole best level, either side: the price jumps."""
REFILL_SHARE = 0.7
"""Share of maker actions that refill a spread wider than one tick."""
REFILL_NEXT_TO_OPPOSITE = 0.8
"""Share of refills that close the spread to one tick; the others leave two or three."""
REFILL_FROM_FOLLOWER = 0.8
"""Share of refills from the side that did not just retreat: the price follows the move."""
MIN_LEVELS_PER_SIDE = 20
"""Below this a side is replenished at the back, so that it is never empty."""

# The planted signal, at ``signal_strength`` 1.
PRESSURE_TIMESCALE_S = 20.0
"""Autocorrelation time of the latent pressure."""
PRESSURE_LAG_S = 5
"""Makers act on the pressure this long after takers do."""
TAKER_TILT = 0.35
"""Buy probability moves by up to this much with the pressure."""
PULL_SHARE = 0.003
"""Extra share of maker actions that pull the best level the pressure pushes against."""
REFILL_TILT = 0.3
"""Share of spread refills whose side the pressure decides."""

_POOL = 4096
"""Random variates drawn per block."""


class InvalidMarketParams(ValueError):
    """Market parameters the generator cannot honour."""


@dataclass(frozen=True)
class MarketParams:
    """Everything that determines a generated market; the defaults mimic BTCUSDT.

    Times in microseconds since the epoch (UTC), prices and quantities in e8, rates per
    second of market time.
    """

    seed: int = 7
    symbol: str = "BTCUSDT"
    start_time_us: int = 1_767_225_600_000_000
    """2026-01-01T00:00:00Z."""
    start_price_e8: int = 98_000 * E8
    first_trade_id: int = 6_000_000_000
    first_agg_trade_id: int = 3_500_000_000
    first_book_update_id: int = 77_000_000_000
    diff_interval_us: int = 100_000
    slice_us: int = 1_000_000
    taker_base_rate: float = 3.1
    """Taker orders per second outside bursts (the mean is about twice that)."""
    maker_base_rate: float = 13.5
    """Maker actions per second outside bursts (the mean is about 3.5 times that)."""
    excitation_decay: float = 3.0
    """Per second: the excitation of each event fades with a time constant of 1/3 s."""
    taker_excitation: float = 3.0
    """Events triggered by a taker order of 0.05 BTC (in proportion to size, capped)."""
    maker_excitation: float = 0.45
    """Events triggered by a maker action."""
    taker_share_after_taker: float = 0.18
    """Share of the events a taker order triggers that are taker orders (cascades)."""
    taker_share_after_maker: float = 0.01
    """Share of the events a maker action triggers that are taker orders."""
    levels_per_side: int = 300
    buy_share: float = 0.5
    """Probability that a taker order buys (without signal)."""
    signal_strength: float = 0.0
    """0 = no planted signal; 1 = the documented strength."""

    def __post_init__(self) -> None:
        if self.diff_interval_us <= 0 or self.slice_us % self.diff_interval_us:
            raise InvalidMarketParams("slice_us must be a positive multiple of diff_interval_us")
        if self.start_time_us % self.diff_interval_us:
            raise InvalidMarketParams("start_time_us must be aligned to diff_interval_us")
        if self.start_price_e8 <= 0 or self.start_price_e8 % TICK_E8:
            raise InvalidMarketParams("start_price_e8 must be a positive multiple of the tick")
        if min(self.taker_base_rate, self.maker_base_rate, self.excitation_decay) <= 0:
            raise InvalidMarketParams("rates and decay must be positive")
        shares = (self.taker_share_after_taker, self.taker_share_after_maker)
        if not all(0.0 <= share <= 1.0 for share in shares) or not 0.0 < self.buy_share < 1.0:
            raise InvalidMarketParams("shares must be probabilities")
        if self.levels_per_side < 2 * MIN_LEVELS_PER_SIDE or self.signal_strength < 0:
            raise InvalidMarketParams("levels_per_side too small or negative signal_strength")


class _Draws:
    """Uniform and standard normal variates from one generator, drawn in blocks for speed."""

    __slots__ = ("_normals", "_rng", "_uniforms")

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._uniforms: list[float] = []
        self._normals: list[float] = []

    def uniform(self) -> float:
        if not self._uniforms:
            self._uniforms = self._rng.random(_POOL).tolist()
        return self._uniforms.pop()

    def normal(self) -> float:
        if not self._normals:
            self._normals = self._rng.standard_normal(_POOL).tolist()
        return self._normals.pop()


class MarketModel:
    """A never-ending seeded BTCUSDT-like market; a ``MarketSource``.

    Each ``next_events()`` call returns the events of the next ``slice_us`` of market time.
    """

    def __init__(self, params: MarketParams | None = None) -> None:
        self.params = params = params or MarketParams()
        self._draws = _Draws(np.random.default_rng(params.seed))
        self._pressure_draws = _Draws(np.random.default_rng([params.seed, 1]))
        self._book = LimitOrderBook()
        start_ticks = params.start_price_e8 / TICK_E8
        self._span_ticks = max(1, int(start_ticks * BOOK_SPAN))
        self._distance_median_ticks = start_ticks * PLACE_DISTANCE_MEDIAN
        # Hawkes state: the excitation (events/s) due to taker orders and to maker actions,
        # both as of the next event, and that event's time.
        self._taker_excitation = 0.0
        self._maker_excitation = 0.0
        self._clock_s = 0.0
        self._next_event_s = 0.0
        self._pressure: list[float] = []
        self._pressure_origin_s = 0
        self._next_trade_id = params.first_trade_id
        self._next_update_id = params.first_book_update_id
        self._changed: tuple[dict[int, int], dict[int, int]] = ({}, {})
        self._first_pending_id = self._next_update_id
        self._top = (0, 0, 0, 0)
        self._retreated = BID
        """The side whose best last moved away from the spread."""
        self._events: list[SourceEvent] = []
        self._deferred_tops: list[BestBidAsk] = []
        self._slice_end_us = params.start_time_us
        self._interval_end_us = 0
        self._warm_up()

    @property
    def symbol(self) -> str:
        return self.params.symbol

    @property
    def first_agg_trade_id(self) -> int:
        return self.params.first_agg_trade_id

    def initial_book(self) -> DepthSnapshot:
        """The whole book before the first event, at ``first_book_update_id - 1``."""
        return self._initial_book

    def next_events(self) -> Sequence[SourceEvent]:
        """The events of the next ``slice_us`` of market time, in event time order."""
        self._slice_end_us += self.params.slice_us
        self._run(self._slice_end_us)
        events, self._events = self._events, []
        return events

    # --- set-up ---------------------------------------------------------------------------

    def _warm_up(self) -> None:
        """Seed a book, then run the market ``WARM_UP_S`` so that it starts in steady state."""
        params = self.params
        warm_up_s = WARM_UP_S
        self._pressure_origin_s = -warm_up_s - PRESSURE_LAG_S
        self._clock_s = self._next_event_s = -float(warm_up_s)
        self._interval_end_us = params.start_time_us - warm_up_s * US_PER_S
        start_tick = params.start_price_e8 // TICK_E8
        for side, best_key in ((BID, -start_tick), (ASK, start_tick + 1)):
            book_side = self._book.sides[side]
            book_side.add(best_key, 3 * E8)
            while len(book_side.keys) < params.levels_per_side:
                book_side.add(best_key + self._place_distance(), self._maker_qty())
        self._top = self._book.top()
        self._draw_next_event()
        self._run(params.start_time_us)
        self._events = []
        self._changed = ({}, {})
        self._next_trade_id = params.first_trade_id
        self._next_update_id = self._first_pending_id = params.first_book_update_id
        self._initial_book = DepthSnapshot(
            params.symbol,
            None,
            params.first_book_update_id - 1,
            tuple((tick * TICK_E8, qty) for tick, qty in self._book.levels(BID)),
            tuple((tick * TICK_E8, qty) for tick, qty in self._book.levels(ASK)),
        )

    # --- the event loop -------------------------------------------------------------------

    def _run(self, end_us: int) -> None:
        """Process every event before ``end_us``, then flush the interval ending there."""
        params = self.params
        interval_us = params.diff_interval_us
        interval_end_us = self._interval_end_us
        draws = self._draws
        while True:
            event_s = self._next_event_s
            time_us = params.start_time_us + math.floor(event_s * US_PER_S)
            if time_us >= end_us:
                break
            if time_us >= interval_end_us:
                self._flush_diff(interval_end_us)
                interval_end_us = (time_us // interval_us + 1) * interval_us
            self._clock_s = event_s
            after_takers = self._taker_excitation
            after_makers = self._maker_excitation
            taker_rate = (
                params.taker_base_rate
                + params.taker_share_after_taker * after_takers
                + params.taker_share_after_maker * after_makers
            )
            base_rate = params.maker_base_rate + params.taker_base_rate
            if draws.uniform() * (base_rate + after_takers + after_makers) < taker_rate:
                qty_e8 = self._taker_qty()
                self._taker_order(time_us, qty_e8)
                # Large orders set off bursts (stop cascades, makers requoting after a sweep).
                multiplier = min(qty_e8 / TAKER_EXCITATION_REF_E8, TAKER_EXCITATION_CAP)
                triggered = params.taker_excitation * multiplier
                self._taker_excitation += params.excitation_decay * triggered
            else:
                self._maker_action(time_us)
                while draws.uniform() < MAKER_BATCH_CONTINUE:
                    self._maker_action(time_us)
                self._maker_excitation += params.excitation_decay * params.maker_excitation
            self._draw_next_event()
        if end_us >= interval_end_us:
            # end_us is on an interval boundary (slices are whole intervals).
            self._flush_diff(interval_end_us)
            interval_end_us = end_us + interval_us
        self._interval_end_us = interval_end_us

    def _draw_next_event(self) -> None:
        """Exact next event of the exponential-kernel Hawkes process (Dassios & Zhao, 2013).

        The first of two waits: the baseline's (exponential) and the excitation's, whose
        intensity ``x e^(-decay s)`` fires with probability ``1 - exp(-x/decay)`` at all.
        """
        params = self.params
        decay = params.excitation_decay
        wait_s = -math.log(1.0 - self._draws.uniform()) / (
            params.taker_base_rate + params.maker_base_rate
        )
        excitation = self._taker_excitation + self._maker_excitation
        if excitation > 1e-12:
            survival = 1.0 + decay * math.log(1.0 - self._draws.uniform()) / excitation
            if survival > 0.0:
                wait_s = min(wait_s, -math.log(survival) / decay)
        fade = math.exp(-decay * wait_s)
        self._taker_excitation *= fade
        self._maker_excitation *= fade
        self._next_event_s += wait_s

    # --- takers ---------------------------------------------------------------------------

    def _taker_order(self, time_us: int, qty_e8: int) -> None:
        """Walk the opposite side from its best level; one ``TradeBatch`` for the order."""
        pressure = self._pressure_at(self._clock_s) * self.params.signal_strength
        buy_share = self.params.buy_share + TAKER_TILT * math.tanh(pressure)
        is_buy = self._draws.uniform() < buy_share
        side = ASK if is_buy else BID
        book_side = self._book.sides[side]
        sign = SIGN[side]
        symbol = self.params.symbol
        trades: list[Trade] = []
        remaining = qty_e8
        # The last level is never taken, so a side is never emptied by a sweep.
        while remaining and len(book_side.keys) > 1:
            key = book_side.keys[0]
            price_e8 = sign * key * TICK_E8
            fills, total = book_side.fill(key, remaining)
            for fill in fills:
                trade_id = self._next_trade_id
                trades.append(Trade(symbol, trade_id, price_e8, fill, not is_buy, time_us, time_us))
                self._next_trade_id = trade_id + 1
                remaining -= fill
            self._changed_level(side, key, total, time_us, defer_top=True)
        if trades:
            self._events.append(TradeBatch(symbol, time_us, time_us, tuple(trades)))
            self._publish_deferred_tops()

    def _taker_qty(self) -> int:
        normal = self._draws.normal()
        sigma = TAKER_QTY_SIGMA_BELOW if normal < 0 else TAKER_QTY_SIGMA_ABOVE
        return _lot(TAKER_QTY_MEDIAN_E8 * math.exp(sigma * normal), TAKER_QTY_MAX_E8)

    # --- makers ---------------------------------------------------------------------------

    def _maker_action(self, time_us: int) -> None:
        """One placement, cancellation, refill or pull: at most one book update."""
        draws = self._draws
        book = self._book
        spread = book.spread_ticks()
        lagged = self._pressure_at(self._clock_s - PRESSURE_LAG_S) * self.params.signal_strength
        tilt = math.tanh(lagged)
        pull = draws.uniform()
        if pull < PULL_BASE_SHARE:
            self._pull_best(BID if pull < 0.5 * PULL_BASE_SHARE else ASK, time_us)
            return
        if tilt and pull < PULL_BASE_SHARE + PULL_SHARE * abs(tilt):
            # Makers expecting a rise pull their asks at the best (a fall: their bids).
            self._pull_best(ASK if tilt > 0 else BID, time_us)
            return
        if spread > 1 and draws.uniform() < REFILL_SHARE:
            self._refill(spread, tilt, time_us)
            return
        side = BID if draws.uniform() < 0.5 else ASK
        book_side = book.sides[side]
        levels = len(book_side.keys)
        cancel_share = 0.5 * (levels / self.params.levels_per_side) ** 2
        if levels < MIN_LEVELS_PER_SIDE or draws.uniform() >= cancel_share:
            if draws.uniform() < JOIN_BEST_SHARE:
                key = book_side.keys[0]
                qty_e8 = self._maker_qty(TOP_QTY_MEDIAN_E8, TOP_QTY_SIGMA)
            else:
                key = book_side.keys[0] + self._place_distance()
                qty_e8 = self._maker_qty()
            self._changed_level(side, key, book_side.add(key, qty_e8), time_us)
            return
        if draws.uniform() < CANCEL_BEST_SHARE:
            # The most recent order at the best: a quote flickering. The level's first order
            # stays, so the best level only goes by trades or by a pull.
            key = book_side.keys[0]
            position = -1
            if len(book_side.queues[key]) == 1:
                return
        else:
            # Rank log-uniform behind the best: quotes near the top are short-lived, deep ones
            # rest for long, which keeps the top sparse as the price moves through old quotes.
            rank = int(math.exp(draws.uniform() * math.log(levels)))
            key = book_side.keys[min(rank, levels - 1)]
            position = int(draws.uniform() * len(book_side.queues[key]))
        self._changed_level(side, key, book_side.cancel(key, position), time_us)

    def _refill(self, spread: int, tilt: float, time_us: int) -> None:
        """Place inside a spread wider than a tick, by default from the side that stayed."""
        draws = self._draws
        follower = 1 - self._retreated
        side = follower if draws.uniform() < REFILL_FROM_FOLLOWER else self._retreated
        if tilt and draws.uniform() < abs(tilt) * REFILL_TILT:
            # The pressure decides which side moves in, so the mid drifts its way.
            side = BID if tilt > 0 else ASK
        # A key k on one side against the opposite best key o leaves a spread of k + o ticks.
        key = 1 - self._book.sides[1 - side].keys[0]
        if draws.uniform() >= REFILL_NEXT_TO_OPPOSITE:
            key += min(1 + int(draws.uniform() * 2), spread - 2)
        total = self._book.sides[side].add(key, self._maker_qty(TOP_QTY_MEDIAN_E8, TOP_QTY_SIGMA))
        self._changed_level(side, key, total, time_us)

    def _pull_best(self, side: int, time_us: int) -> None:
        """Withdraw a side's whole best level at once: one update, the level removed."""
        book_side = self._book.sides[side]
        if len(book_side.keys) <= MIN_LEVELS_PER_SIDE:
            return
        key = book_side.keys[0]
        while book_side.cancel(key, -1):
            pass
        self._changed_level(side, key, 0, time_us)

    def _place_distance(self) -> int:
        distance = self._distance_median_ticks * math.exp(
            PLACE_DISTANCE_SIGMA * self._draws.normal()
        )
        return min(max(1, int(distance)), self._span_ticks)

    def _maker_qty(
        self, median_e8: int = MAKER_QTY_MEDIAN_E8, sigma: float = MAKER_QTY_SIGMA
    ) -> int:
        return _lot(median_e8 * math.exp(sigma * self._draws.normal()), MAKER_QTY_MAX_E8)

    # --- book updates, tops and diffs -----------------------------------------------------

    def _changed_level(
        self, side: int, key: int, total_e8: int, time_us: int, defer_top: bool = False
    ) -> None:
        """Record one book update: its id, the level's new total, a new top if any."""
        update_id = self._next_update_id
        self._next_update_id = update_id + 1
        self._changed[side][key] = total_e8
        book = self._book
        top = book.top()
        if top != self._top:
            if top[0] < self._top[0]:
                self._retreated = BID
            elif top[2] > self._top[2]:
                self._retreated = ASK
            self._top = top
            event = BestBidAsk(
                self.params.symbol,
                time_us,
                update_id,
                top[0] * TICK_E8,
                top[1],
                top[2] * TICK_E8,
                top[3],
            )
            if defer_top:
                self._deferred_tops.append(event)
            else:
                self._events.append(event)
        if len(book.sides[side].keys) < MIN_LEVELS_PER_SIDE:
            self._replenish(side, time_us, defer_top)

    def _replenish(self, side: int, time_us: int, defer_top: bool) -> None:
        """Add a level behind the deepest one of a side running short of levels."""
        book_side = self._book.sides[side]
        key = book_side.keys[-1] + 1 + int(self._draws.uniform() * 100)
        self._changed_level(side, key, book_side.add(key, self._maker_qty()), time_us, defer_top)

    def _publish_deferred_tops(self) -> None:
        self._events.extend(self._deferred_tops)
        self._deferred_tops.clear()

    def _flush_diff(self, interval_end_us: int) -> None:
        """Net the pending updates into one ``DepthDiff`` at the interval's last microsecond."""
        if self._next_update_id == self._first_pending_id:
            return
        bids, asks = self._changed
        self._events.append(
            DepthDiff(
                self.params.symbol,
                interval_end_us - 1,
                self._first_pending_id,
                self._next_update_id - 1,
                tuple((-key * TICK_E8, bids[key]) for key in sorted(bids)),
                tuple((key * TICK_E8, asks[key]) for key in sorted(asks)),
            )
        )
        self._changed = ({}, {})
        self._first_pending_id = self._next_update_id

    # --- planted signal -------------------------------------------------------------------

    def _pressure_at(self, time_s: float) -> float:
        """The latent pressure at ``time_s``: AR(1) on whole seconds, unit variance.

        Asked for at most ``PRESSURE_LAG_S`` seconds back, so older seconds are dropped.
        """
        index = math.floor(time_s) - self._pressure_origin_s
        pressure = self._pressure
        if index >= len(pressure) and len(pressure) > 1_000:
            dropped = len(pressure) - PRESSURE_LAG_S - 2
            del pressure[:dropped]
            self._pressure_origin_s += dropped
            index -= dropped
        if index >= len(pressure):
            draws = self._pressure_draws
            keep = math.exp(-1.0 / PRESSURE_TIMESCALE_S)
            innovation = math.sqrt(1.0 - keep * keep)
            value = pressure[-1] if pressure else draws.normal()
            while index >= len(pressure):
                value = keep * value + innovation * draws.normal()
                pressure.append(value)
        return pressure[index]


def _lot(qty_e8: float, max_e8: int) -> int:
    """A quantity on the lot step, at least one lot and at most ``max_e8``."""
    qty = min(int(qty_e8), max_e8)
    return max(MIN_QTY_E8, qty - qty % MIN_QTY_E8)
