"""Late trades folded into seconds already published, and the features after them recomputed.

A live second closes on evidence (later trades, or two quiet seconds: ``watermark``), and a
trade can still arrive after that: a stalled trade stream that catches up, trades recovered
by id over REST after a reconnect, a bus backlog read after Redis returns. Dropping it
would leave the published ``n_trades_1s`` (and every window over that second) short of the
exchange's tape for good, while the lake has the trade. So the closed seconds of the last
``horizon_s`` are kept as bars, a late aggregate trade is folded into its second's bar as
``BarBuilder`` would have built it, and the vectors from that second on are recomputed.

Exact by construction: besides the streaming engine, a second engine is fed each bar when
it leaves the horizon (no correction can reach it any more). A recomputation starts from a
copy of that engine and replays the bars of the horizon, corrected ones included: the same
bars in the same order as a feed that had every trade in time, hence the same vectors bit
for bit, whatever the engine carries (last price and quote, seconds since its start). A
fresh engine fed the last 61 bars would not be: it would lose a last price or quote older
than them and count its warm-up from the wrong second.

Bounded: one recomputation replays at most ``horizon_s`` bars, however many late trades
were folded since the last one; a trade older than the horizon is refused (the caller
counts it as late; the lake repairs its second from the record).
"""

from __future__ import annotations

import bisect
import copy
from array import array
from collections import deque
from collections.abc import Sequence
from typing import NamedTuple

from realtime.features.bars import US_PER_SECOND, Bar, merge_agg_trade
from realtime.features.engine import LiveFeatureEngine
from realtime.market.events import AggTrade


def feed_bar(engine: LiveFeatureEngine, bar: Bar) -> list[float]:
    """``engine.on_bar(bar)``, stepping over the middle of a long quiet run.

    ``BarBuilder(keep_quiet_s=…)`` leaves out the middle of a long run of empty seconds;
    the engine holds only its last 60 s, all quiet by then, so it continues as if fed them
    (``LiveFeatureEngine.skip_to``).
    """
    if engine.ts_sec is not None and bar.ts_sec > engine.ts_sec + 1:
        engine.skip_to(bar.ts_sec - 1)
    return engine.on_bar(bar)


def continues(run: AggTrade, agg: AggTrade) -> bool:
    """Whether ``agg``'s fills extend ``run`` (``FillAggregator``'s rule: the next ids, the
    same time, side and price): had they come in time, they would be one aggregate trade."""
    return (
        agg.first_trade_id == run.last_trade_id + 1
        and agg.transact_time_us == run.transact_time_us
        and agg.price_e8 == run.price_e8
        and agg.is_buyer_maker == run.is_buyer_maker
    )


def fold_late_trade(bar: Bar, tail: AggTrade | None, agg: AggTrade) -> tuple[Bar, AggTrade]:
    """``bar`` (whose highest-id aggregate trade is ``tail``) with the late ``agg`` folded in,
    and its new tail.

    The open run of fills is cut when its second closes, so a taker order whose fills were
    split by the close comes back as a second aggregate trade that continues the tail; in
    time they would have been one, whose whole quantity counts as one trade for the largest
    size. Sums and the other fields are as ``merge_agg_trade``.
    """
    merged = merge_agg_trade(bar, agg)
    if tail is None:
        return merged, agg
    if continues(tail, agg):
        joined = tail._replace(qty_e8=tail.qty_e8 + agg.qty_e8, last_trade_id=agg.last_trade_id)
        # The tail's own size is already in the maximum, and the joined size exceeds it.
        return merged._replace(max_qty_e8=max(merged.max_qty_e8, joined.qty_e8)), joined
    return merged, agg if agg.last_trade_id > tail.last_trade_id else tail


def same_bits(left: Sequence[float], right: Sequence[float]) -> bool:
    """Equal as float64 bit patterns (NaN equals NaN, 0.0 differs from -0.0)."""
    return array("d", left).tobytes() == array("d", right).tobytes()


class CorrectedSecond(NamedTuple):
    """A published second whose vector a late trade changed."""

    ts_sec: int
    bar: Bar
    vector: list[float]


class _Closed(NamedTuple):
    bar: Bar
    tail: AggTrade | None
    """The bar's highest-id aggregate trade (``None`` without trades)."""
    vector: list[float]


class LateTradeCorrector:
    """The feature engine of a live stream of closed bars, with the last ``horizon_s`` of
    them kept for late trades (``fold``) and recomputation (``recompute``).

    ``horizon_s``: closed seconds a late trade may still correct; the features role passes
    the hot state's history (``HISTORY_TTL_S``), since an older second is no longer
    published anywhere a correction could reach.
    """

    def __init__(self, *, horizon_s: int) -> None:
        if horizon_s < 1:
            raise ValueError(f"horizon_s must be positive, got {horizon_s}")
        self.horizon_s = horizon_s
        self.engine = LiveFeatureEngine()
        """State after every bar closed so far."""
        self._settled = LiveFeatureEngine()
        """State after every bar that left the horizon."""
        self._closed: deque[_Closed] = deque()
        self._dirty_from: int | None = None
        """The oldest second folded into since the last ``recompute``."""

    def close(self, bar: Bar, tail: AggTrade | None) -> list[float]:
        """Feed the next closed bar (``tail``: its highest-id aggregate trade); its vector."""
        vector = feed_bar(self.engine, bar)
        closed = self._closed
        closed.append(_Closed(bar, tail, vector))
        oldest = bar.ts_sec - self.horizon_s
        while closed[0].bar.ts_sec <= oldest:
            feed_bar(self._settled, closed.popleft().bar)
        return vector

    def fold(self, agg: AggTrade) -> bool:
        """Fold a late aggregate trade into its closed second; ``False`` if that second is
        not within the horizon (or never closed). Raises ``ValueError`` for ids the second
        already holds. The vectors change at the next ``recompute``."""
        ts_sec = agg.transact_time_us // US_PER_SECOND
        closed = self._closed
        index = bisect.bisect_left(closed, ts_sec, key=lambda c: c.bar.ts_sec)
        if index == len(closed) or closed[index].bar.ts_sec != ts_sec:
            return False
        entry = closed[index]
        bar, tail = fold_late_trade(entry.bar, entry.tail, agg)
        closed[index] = entry._replace(bar=bar, tail=tail)
        if self._dirty_from is None or ts_sec < self._dirty_from:
            self._dirty_from = ts_sec
        return True

    def recompute(self) -> list[CorrectedSecond]:
        """Replay the horizon from the settled engine after folds; the seconds whose vectors
        changed, oldest first. At most ``horizon_s`` bars, once for any number of folds."""
        dirty_from, self._dirty_from = self._dirty_from, None
        if dirty_from is None:
            return []
        engine = copy.deepcopy(self._settled)
        corrected = []
        closed = self._closed
        for index in range(len(closed)):
            entry = closed[index]
            vector = feed_bar(engine, entry.bar)
            if entry.bar.ts_sec >= dirty_from and not same_bits(vector, entry.vector):
                closed[index] = entry._replace(vector=vector)
                corrected.append(CorrectedSecond(entry.bar.ts_sec, entry.bar, vector))
        self.engine = engine
        return corrected

    def recent_bars(self, count: int) -> list[Bar]:
        """The newest ``count`` closed bars (fewer at the start), oldest first."""
        closed = self._closed
        return [closed[index].bar for index in range(max(len(closed) - count, 0), len(closed))]
