"""The exchange's trade tape: every trade it has printed, columnar, with its aggregate trade id.

REST (``trades``, ``historicalTrades``, ``aggTrades``, ``klines``) and the archive files are
all views of this one tape, so backfill, stream and recovery see the same ids. Trades come
in as ``TradeBatch``es (one taker match each); a run of equal price inside a batch is one
aggregate trade, Binance's rule (same taker order, same price, same time).

Appends go to Python lists; reads work on numpy columns, rebuilt only when the tape grew.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from realtime.market.events import TradeBatch
from realtime.market.quote_qty import quote_qty_e8

US_PER_MS = 1_000


class TradeColumns(NamedTuple):
    """Raw trades in id order; times in microseconds."""

    trade_id: np.ndarray
    price_e8: np.ndarray
    qty_e8: np.ndarray
    time_us: np.ndarray
    is_buyer_maker: np.ndarray
    agg_trade_id: np.ndarray

    def take(self, index: np.ndarray | slice) -> TradeColumns:
        return TradeColumns(*(column[index] for column in self))


class AggTradeColumns(NamedTuple):
    """Aggregate trades in id order: quantity summed over ``first_trade_id..last_trade_id``."""

    agg_trade_id: np.ndarray
    price_e8: np.ndarray
    qty_e8: np.ndarray
    first_trade_id: np.ndarray
    last_trade_id: np.ndarray
    time_us: np.ndarray
    is_buyer_maker: np.ndarray

    def take(self, index: np.ndarray | slice) -> AggTradeColumns:
        return AggTradeColumns(*(column[index] for column in self))


class KlineColumns(NamedTuple):
    """Candles keyed by open time (us); ``quote_volume_e8`` holds Python ints (exact sums)."""

    open_time_us: np.ndarray
    open_e8: np.ndarray
    high_e8: np.ndarray
    low_e8: np.ndarray
    close_e8: np.ndarray
    volume_e8: np.ndarray
    close_time_us: np.ndarray
    quote_volume_e8: np.ndarray
    trade_count: np.ndarray
    taker_buy_volume_e8: np.ndarray
    taker_buy_quote_volume_e8: np.ndarray

    def take(self, index: np.ndarray | slice) -> KlineColumns:
        return KlineColumns(*(column[index] for column in self))


class TradeTape:
    """Every trade printed so far, in id order, and the aggregate trades they form."""

    def __init__(self, symbol: str, first_agg_trade_id: int) -> None:
        self.symbol = symbol
        self.next_agg_trade_id = first_agg_trade_id
        self._pending: list[tuple[int, int, int, int, bool, int]] = []
        self._trades: TradeColumns | None = None
        self._aggs: AggTradeColumns | None = None

    def __len__(self) -> int:
        return len(self.trades().trade_id)

    def record(self, batch: TradeBatch) -> None:
        """Append one taker match; its trades must continue the tape's trade ids."""
        last_price: int | None = None
        for trade in batch.trades:
            if trade.price_e8 != last_price:
                agg_trade_id = self.next_agg_trade_id
                self.next_agg_trade_id += 1
                last_price = trade.price_e8
            self._pending.append(
                (
                    trade.trade_id,
                    trade.price_e8,
                    trade.qty_e8,
                    batch.transact_time_us,
                    trade.is_buyer_maker,
                    agg_trade_id,
                )
            )

    def trades(self) -> TradeColumns:
        """All trades as columns (rebuilt only when the tape has grown)."""
        if self._pending or self._trades is None:
            fresh = _trade_columns(self._pending)
            self._pending = []
            self._trades = (
                fresh
                if self._trades is None
                else TradeColumns(
                    *(np.concatenate(pair) for pair in zip(self._trades, fresh, strict=True))
                )
            )
            self._aggs = None
        return self._trades

    def agg_trades(self) -> AggTradeColumns:
        """All aggregate trades as columns."""
        trades = self.trades()
        if self._aggs is None:
            self._aggs = _aggregate(trades)
        return self._aggs

    @property
    def last_time_us(self) -> int | None:
        times = self.trades().time_us
        return int(times[-1]) if len(times) else None

    # -- REST windows: Binance's rules, oldest first, at most ``limit`` rows --------------------

    def trades_from(self, from_id: int | None, limit: int) -> TradeColumns:
        """``historicalTrades``: from ``from_id`` (inclusive), or the most recent ``limit``."""
        trades = self.trades()
        if from_id is None:
            return trades.take(slice(max(0, len(trades.trade_id) - limit), None))
        start = int(np.searchsorted(trades.trade_id, from_id))
        return trades.take(slice(start, start + limit))

    def agg_trades_window(
        self,
        from_id: int | None,
        start_us: int | None,
        end_us: int | None,
        limit: int,
    ) -> AggTradeColumns:
        """``aggTrades``: by ``from_id``, or by inclusive time bounds, or the newest ``limit``."""
        aggs = self.agg_trades()
        if from_id is not None:
            start = int(np.searchsorted(aggs.agg_trade_id, from_id))
            return aggs.take(slice(start, start + limit))
        first, stop = _time_window(aggs.time_us, start_us, end_us, limit)
        return aggs.take(slice(first, stop))

    def day(self, day_start_us: int, day_end_us: int) -> TradeColumns:
        """The trades with ``day_start_us <= time < day_end_us``."""
        trades = self.trades()
        first, stop = np.searchsorted(trades.time_us, [day_start_us, day_end_us])
        return trades.take(slice(int(first), int(stop)))

    def klines(
        self,
        interval_us: int,
        start_us: int | None,
        end_us: int | None,
        limit: int,
        now_us: int,
    ) -> KlineColumns:
        """``klines``: every interval from the first trade's to the one holding ``now_us``.

        Intervals without trades are still candles (open = high = low = close = previous
        close, zero volume), as Binance serves them while a symbol trades.
        """
        trades = self.trades()
        if len(trades.trade_id) == 0:
            return _empty_klines()
        first_open = int(trades.time_us[0]) // interval_us * interval_us
        last_open = max(now_us, int(trades.time_us[-1])) // interval_us * interval_us
        opens = np.arange(first_open, last_open + interval_us, interval_us, dtype=np.int64)
        first, stop = _time_window(opens, start_us, end_us, limit)
        opens = opens[first:stop]
        if len(opens) == 0:
            return _empty_klines()
        lo, hi = np.searchsorted(trades.time_us, [opens[0], opens[-1] + interval_us])
        return candles(
            trades.take(slice(int(lo), int(hi))), opens, interval_us, _close_before(trades, int(lo))
        )


def candles(
    trades: TradeColumns, opens: np.ndarray, interval_us: int, previous_close_e8: int
) -> KlineColumns:
    """Candles for the given open times over ``trades`` (all inside them), gaps carried."""
    n = len(opens)
    bucket = (trades.time_us - opens[0]) // interval_us
    counts = np.bincount(bucket, minlength=n).astype(np.int64)
    has = counts > 0
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    ends = starts + counts - 1
    price = trades.price_e8
    qty = trades.qty_e8
    quote = quote_qty_e8(price, qty)
    buy = ~trades.is_buyer_maker

    def reduce_at(values: np.ndarray, ufunc: np.ufunc, fill: int) -> np.ndarray:
        out = np.full(n, fill, dtype=values.dtype if values.dtype != object else object)
        if has.any():
            out[has] = ufunc.reduceat(values, starts[has])
        return out

    close = np.zeros(n, dtype=np.int64)
    close[has] = price[ends[has]]
    # Carry the last close forward through empty candles.
    index = np.where(has, np.arange(n), -1)
    np.maximum.accumulate(index, out=index)
    carried = np.where(index >= 0, close[np.maximum(index, 0)], previous_close_e8)
    open_ = carried.copy()
    open_[has] = price[starts[has]]
    high = np.where(has, reduce_at(price, np.maximum, 0), carried)
    low = np.where(has, reduce_at(price, np.minimum, 0), carried)
    quote_objects = quote.astype(object)
    return KlineColumns(
        open_time_us=opens,
        open_e8=open_,
        high_e8=high,
        low_e8=low,
        close_e8=carried,
        volume_e8=reduce_at(qty, np.add, 0),
        close_time_us=opens + interval_us - 1,
        quote_volume_e8=reduce_at(quote_objects, np.add, 0),
        trade_count=counts,
        taker_buy_volume_e8=reduce_at(np.where(buy, qty, 0), np.add, 0),
        taker_buy_quote_volume_e8=reduce_at(
            np.where(buy, quote_objects, 0).astype(object), np.add, 0
        ),
    )


def _close_before(trades: TradeColumns, index: int) -> int:
    return int(trades.price_e8[index - 1]) if index > 0 else int(trades.price_e8[0])


def _time_window(
    times: np.ndarray, start_us: int | None, end_us: int | None, limit: int
) -> tuple[int, int]:
    """Index range ``[first, stop)`` of Binance's time-window rule over sorted ``times``.

    Start only (or both): the oldest rows from the start, never past the end. End only, or
    neither: the newest ``limit`` rows up to the end.
    """
    stop = len(times) if end_us is None else int(np.searchsorted(times, end_us, side="right"))
    if start_us is None:
        return max(0, stop - limit), stop
    first = int(np.searchsorted(times, start_us, side="left"))
    return first, max(first, min(stop, first + limit))


def _trade_columns(rows: list[tuple[int, int, int, int, bool, int]]) -> TradeColumns:
    if not rows:
        empty = np.zeros(0, dtype=np.int64)
        return TradeColumns(empty, empty, empty, empty, np.zeros(0, dtype=bool), empty)
    trade_id, price, qty, time_us, maker, agg = zip(*rows, strict=True)
    return TradeColumns(
        np.array(trade_id, dtype=np.int64),
        np.array(price, dtype=np.int64),
        np.array(qty, dtype=np.int64),
        np.array(time_us, dtype=np.int64),
        np.array(maker, dtype=bool),
        np.array(agg, dtype=np.int64),
    )


def _aggregate(trades: TradeColumns) -> AggTradeColumns:
    n = len(trades.trade_id)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return AggTradeColumns(empty, empty, empty, empty, empty, empty, np.zeros(0, dtype=bool))
    starts = np.flatnonzero(np.diff(trades.agg_trade_id, prepend=trades.agg_trade_id[0] - 1))
    ends = np.append(starts[1:], n) - 1
    return AggTradeColumns(
        agg_trade_id=trades.agg_trade_id[starts],
        price_e8=trades.price_e8[starts],
        qty_e8=np.add.reduceat(trades.qty_e8, starts),
        first_trade_id=trades.trade_id[starts],
        last_trade_id=trades.trade_id[ends],
        time_us=trades.time_us[starts],
        is_buyer_maker=trades.is_buyer_maker[starts],
    )


def _empty_klines() -> KlineColumns:
    empty = np.zeros(0, dtype=np.int64)
    return KlineColumns(
        *([empty] * 7), np.zeros(0, dtype=object), empty, empty, np.zeros(0, dtype=object)
    )
