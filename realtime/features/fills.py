"""Raw fills to aggregate trades, the way the lake sees them (contract ``grid.trades``).

The lake's history is Binance's aggregate trades: consecutive fills of one taker order at one
price. The live ``@trade`` stream sends raw fills, so the live path folds them back: a run
of consecutive trade ids with the same transact time, side and price is one aggregate
trade. A taker order's fills share its transact time, and another taker order at the same
microsecond on the same side and price is what Binance aggregates too, so the live bars are
the lake's bars. REST trades recovered after a gap fold the same way, since they carry the
same fields.

The open run is held until a fill that cannot extend it arrives, or until its second is
about to close (``flush_through``).
"""

from __future__ import annotations

from realtime.features.bars import US_PER_SECOND
from realtime.market.events import AggTrade, Trade

LIVE_AGG_ID = -1
"""Live aggregates have no exchange agg id: the stream does not send it."""


class FillAggregator:
    """Folds trades, in id order, into aggregate trades."""

    def __init__(self) -> None:
        self._open: list[Trade] = []

    @property
    def open_second(self) -> int | None:
        """The second of the held run, if any."""
        return self._open[0].transact_time_us // US_PER_SECOND if self._open else None

    def add(self, trade: Trade) -> AggTrade | None:
        """Take the next trade; return the aggregate it completed, if it completed one."""
        run = self._open
        if run:
            last = run[-1]
            if (
                trade.trade_id == last.trade_id + 1
                and trade.transact_time_us == last.transact_time_us
                and trade.price_e8 == last.price_e8
                and trade.is_buyer_maker == last.is_buyer_maker
            ):
                run.append(trade)
                return None
            done = self._fold()
            self._open = [trade]
            return done
        run.append(trade)
        return None

    def flush_through(self, ts_sec: int) -> AggTrade | None:
        """Complete the held run if it belongs to a second ``<= ts_sec`` (it is closing)."""
        second = self.open_second
        if second is None or second > ts_sec:
            return None
        done = self._fold()
        self._open = []
        return done

    def _fold(self) -> AggTrade:
        run = self._open
        first = run[0]
        return AggTrade(
            symbol=first.symbol,
            agg_trade_id=LIVE_AGG_ID,
            price_e8=first.price_e8,
            qty_e8=sum(trade.qty_e8 for trade in run),
            first_trade_id=first.trade_id,
            last_trade_id=run[-1].trade_id,
            transact_time_us=first.transact_time_us,
            is_buyer_maker=first.is_buyer_maker,
            is_best_match=first.is_best_match,
        )
