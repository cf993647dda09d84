"""Per-second bars: exact integer aggregates of the trades (and last quote) of one second.

Second ``t`` holds the trades with ``floor(transact_time_us / 1e6) == t`` and the best
bid/ask events with ``floor(event_time_us / 1e6) == t``. Everything is an integer: counts,
e8 quantities, and the notional ``sum(price_e8 * qty_e8)`` at exponent -16, which exceeds
int64 (one BTC at 98,000 USDT is 9.8e20), so it is a Python int.

``BarBuilder`` makes bars from live events one at a time; ``bars_from_tables`` makes the same
bars from a stored day at once. Both include the seconds without trades.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from realtime.market.events import AggTrade, BestBidAsk, Trade

US_PER_SECOND = 1_000_000
NONE = -1
"""Marks a missing price, time or id in a bar (a second without trades or quotes)."""


class Bar(NamedTuple):
    """One second of one symbol. Price and id fields are ``NONE`` (-1) where nothing happened."""

    ts_sec: int
    n_trades: int
    buy_qty_e8: int
    """Taker-buy quantity (``is_buyer_maker`` false)."""
    sell_qty_e8: int
    notional_e16: int
    """``sum(price_e8 * qty_e8)``: exact, unbounded."""
    first_price_e8: int
    last_price_e8: int
    max_qty_e8: int
    """Largest single trade; 0 without trades."""
    last_trade_time_us: int
    first_trade_id: int
    last_trade_id: int
    bid_price_e8: int
    """Best bid of the last best bid/ask event in the second."""
    ask_price_e8: int
    bid_qty_e8: int
    """Quantity at the best bid of that event."""
    ask_qty_e8: int


def empty_bar(ts_sec: int) -> Bar:
    return Bar(ts_sec, 0, 0, 0, 0, NONE, NONE, 0, NONE, NONE, NONE, NONE, NONE, NONE, NONE)


def merge_agg_trade(bar: Bar, agg: AggTrade) -> Bar:
    """``bar`` with ``agg`` folded in, as ``BarBuilder`` builds it from the same aggregate
    trades fed in trade-id order (a trade that arrived after its second closed).

    Sums, counts and the largest size do not depend on order; the first and last price, id
    and time follow the ids. Raises ``ValueError`` for a trade of another second or one
    whose ids the bar already holds, since folding it would count trades twice.
    """
    if agg.transact_time_us // US_PER_SECOND != bar.ts_sec:
        raise ValueError(f"trade at {agg.transact_time_us} µs is not in second {bar.ts_sec}")
    fills = agg.last_trade_id - agg.first_trade_id + 1
    if fills < 1:
        raise ValueError(f"trade ids {agg.first_trade_id}..{agg.last_trade_id} are empty")
    empty = bar.n_trades == 0
    before = empty or agg.last_trade_id < bar.first_trade_id
    after = empty or agg.first_trade_id > bar.last_trade_id
    if not (before or after):
        # Between the bar's first and last ids only if the bar has a hole of that size there.
        span = bar.last_trade_id - bar.first_trade_id + 1
        inside = bar.first_trade_id < agg.first_trade_id and agg.last_trade_id < bar.last_trade_id
        if not inside or bar.n_trades + fills > span:
            raise ValueError(
                f"trade ids {agg.first_trade_id}..{agg.last_trade_id} are already in "
                f"second {bar.ts_sec} ({bar.first_trade_id}..{bar.last_trade_id})"
            )
    buy = 0 if agg.is_buyer_maker else agg.qty_e8
    return bar._replace(
        n_trades=bar.n_trades + fills,
        buy_qty_e8=bar.buy_qty_e8 + buy,
        sell_qty_e8=bar.sell_qty_e8 + agg.qty_e8 - buy,
        notional_e16=bar.notional_e16 + agg.price_e8 * agg.qty_e8,
        first_price_e8=agg.price_e8 if before else bar.first_price_e8,
        first_trade_id=agg.first_trade_id if before else bar.first_trade_id,
        last_price_e8=agg.price_e8 if after else bar.last_price_e8,
        last_trade_id=agg.last_trade_id if after else bar.last_trade_id,
        last_trade_time_us=agg.transact_time_us if after else bar.last_trade_time_us,
        max_qty_e8=max(bar.max_qty_e8, agg.qty_e8),
    )


class BarBuilder:
    """Builds bars from live events in arrival order; a second closes when a later one starts.

    Events for a second that already closed (late by more than the open second) are not
    applied here: they are counted in ``late_events`` and left out of the bars it builds.
    The features role does not send it any: it routes events of closed seconds itself,
    folding a late trade into its published second (``realtime/features/correction.py``)
    and dropping a late best bid/ask.

    With ``keep_quiet_s``, a run of more than ``2 * keep_quiet_s`` empty seconds is
    materialised as its first and last ``keep_quiet_s`` seconds only, so the work of one
    close is bounded whatever the times say (a consumer whose state spans at most
    ``keep_quiet_s`` seconds loses nothing by it).
    """

    def __init__(self, keep_quiet_s: int | None = None) -> None:
        if keep_quiet_s is not None and keep_quiet_s < 1:
            raise ValueError(f"keep_quiet_s must be positive, got {keep_quiet_s}")
        self.keep_quiet_s = keep_quiet_s
        self.open_sec: int | None = None
        self.late_events = 0
        self._reset()

    def _reset(self) -> None:
        self._n_trades = 0
        self._buy = 0
        self._sell = 0
        self._notional = 0
        self._first_price = NONE
        self._last_price = NONE
        self._max_qty = 0
        self._last_time = NONE
        self._first_id = NONE
        self._last_id = NONE
        self._bid = NONE
        self._ask = NONE
        self._bid_qty = NONE
        self._ask_qty = NONE

    def add_trade(self, trade: Trade) -> list[Bar]:
        """Apply one trade; return the bars it closed (the open one and any empty seconds)."""
        closed, on_time = self._enter(trade.transact_time_us // US_PER_SECOND)
        if on_time:
            self._fill(
                trade.price_e8,
                trade.qty_e8,
                trade.is_buyer_maker,
                trade.transact_time_us,
                trade.trade_id,
                trade.trade_id,
            )
        return closed

    def add_agg_trade(self, agg: AggTrade) -> list[Bar]:
        """Apply one aggregate trade (the fills of one taker order at one price); return the
        bars it closed. It counts as its ``last_trade_id - first_trade_id + 1`` trades, and
        its whole quantity is one trade for the largest-trade size (contract ``grid.trades``).
        """
        closed, on_time = self._enter(agg.transact_time_us // US_PER_SECOND)
        if on_time:
            self._fill(
                agg.price_e8,
                agg.qty_e8,
                agg.is_buyer_maker,
                agg.transact_time_us,
                agg.first_trade_id,
                agg.last_trade_id,
            )
        return closed

    def _fill(
        self, price: int, qty: int, maker: bool, time_us: int, first_id: int, last_id: int
    ) -> None:
        """Add fills ``first_id..last_id`` at one price, ``qty`` in all, to the open second."""
        if self._n_trades == 0:
            self._first_price = price
            self._first_id = first_id
        self._n_trades += last_id - first_id + 1
        if maker:
            self._sell += qty
        else:
            self._buy += qty
        self._notional += price * qty
        self._last_price = price
        if qty > self._max_qty:
            self._max_qty = qty
        self._last_time = time_us
        self._last_id = last_id

    def add_quote(self, quote: BestBidAsk) -> list[Bar]:
        """Apply one best bid/ask; return the bars it closed."""
        closed, on_time = self._enter(quote.event_time_us // US_PER_SECOND)
        if not on_time:
            return closed
        self._bid = quote.bid_price_e8
        self._ask = quote.ask_price_e8
        self._bid_qty = quote.bid_qty_e8
        self._ask_qty = quote.ask_qty_e8
        return closed

    def _enter(self, second: int) -> tuple[list[Bar], bool]:
        """Move to an event's second; return the bars that closed and whether it is on time."""
        closed = self._advance(second)
        if second != self.open_sec:
            self.late_events += 1
            return closed, False
        return closed, True

    def close_through(self, ts_sec: int) -> list[Bar]:
        """Close every second up to and including ``ts_sec`` (time passed without events)."""
        if self.open_sec is None or ts_sec < self.open_sec:
            return []
        return self._advance(ts_sec + 1)

    def _advance(self, second: int) -> list[Bar]:
        if self.open_sec is None:
            self.open_sec = second
            return []
        if second <= self.open_sec:
            return []
        closed = [
            Bar(
                self.open_sec,
                self._n_trades,
                self._buy,
                self._sell,
                self._notional,
                self._first_price,
                self._last_price,
                self._max_qty,
                self._last_time,
                self._first_id,
                self._last_id,
                self._bid,
                self._ask,
                self._bid_qty,
                self._ask_qty,
            )
        ]
        quiet_from, keep = self.open_sec + 1, self.keep_quiet_s
        if keep is not None and second - quiet_from > 2 * keep:
            closed.extend(empty_bar(ts) for ts in range(quiet_from, quiet_from + keep))
            closed.extend(empty_bar(ts) for ts in range(second - keep, second))
        else:
            closed.extend(empty_bar(ts) for ts in range(quiet_from, second))
        self.open_sec = second
        self._reset()
        return closed


@dataclass(frozen=True)
class Bars:
    """Consecutive bars as columns: row ``i`` is second ``start_sec + i``.

    Integer columns are int64 numpy arrays; ``notional_e16`` is a list of Python ints.
    """

    start_sec: int
    n_trades: np.ndarray
    buy_qty_e8: np.ndarray
    sell_qty_e8: np.ndarray
    notional_e16: list[int]
    first_price_e8: np.ndarray
    last_price_e8: np.ndarray
    max_qty_e8: np.ndarray
    last_trade_time_us: np.ndarray
    first_trade_id: np.ndarray
    last_trade_id: np.ndarray
    bid_price_e8: np.ndarray
    ask_price_e8: np.ndarray
    bid_qty_e8: np.ndarray
    ask_qty_e8: np.ndarray

    def __len__(self) -> int:
        return len(self.n_trades)

    @property
    def ts_sec(self) -> np.ndarray:
        return np.arange(self.start_sec, self.start_sec + len(self), dtype=np.int64)

    def row(self, index: int) -> Bar:
        """Bar ``index`` as the live path's ``Bar`` (for comparisons)."""
        values = {"ts_sec": self.start_sec + index, "notional_e16": self.notional_e16[index]}
        for name in Bar._fields:
            if name not in values:
                values[name] = int(getattr(self, name)[index])
        return Bar(**values)

    def rows(self) -> Iterator[Bar]:
        return (self.row(index) for index in range(len(self)))

    @staticmethod
    def from_rows(rows: list[Bar]) -> Bars:
        """Columns from consecutive live bars."""
        if any(b.ts_sec != rows[0].ts_sec + i for i, b in enumerate(rows)):
            raise ValueError("bars are not consecutive seconds")

        def column(name: str) -> np.ndarray:
            return np.array([getattr(bar, name) for bar in rows], dtype=np.int64)

        return Bars(
            start_sec=rows[0].ts_sec,
            n_trades=column("n_trades"),
            buy_qty_e8=column("buy_qty_e8"),
            sell_qty_e8=column("sell_qty_e8"),
            notional_e16=[b.notional_e16 for b in rows],
            first_price_e8=column("first_price_e8"),
            last_price_e8=column("last_price_e8"),
            max_qty_e8=column("max_qty_e8"),
            last_trade_time_us=column("last_trade_time_us"),
            first_trade_id=column("first_trade_id"),
            last_trade_id=column("last_trade_id"),
            bid_price_e8=column("bid_price_e8"),
            ask_price_e8=column("ask_price_e8"),
            bid_qty_e8=column("bid_qty_e8"),
            ask_qty_e8=column("ask_qty_e8"),
        )


def bars_from_tables(
    trades: pa.Table,
    quotes: pa.Table | None = None,
    *,
    start_sec: int | None = None,
    end_sec: int | None = None,
) -> Bars:
    """Bars for seconds ``start_sec..end_sec`` from stored trades (and best bid/asks).

    ``trades`` has the ``arrow_schemas.TRADES`` columns (trade_id, price_e8, qty_e8,
    transact_time, is_buyer_maker), ordered by time as Binance's ids are, or the
    ``arrow_schemas.AGG_TRADES`` columns: an aggregate trade counts as its
    ``last_trade_id - first_trade_id + 1`` trades and is one trade for the largest size, as
    ``BarBuilder.add_agg_trade`` does. ``quotes`` has
    event_time (timestamp us), bid/ask price_e8 and qty_e8. The range defaults to the
    first through the last second with an event.
    """
    trade_us = _micros(trades["transact_time"])
    quote_us = _micros(quotes["event_time"]) if quotes is not None else np.empty(0, np.int64)
    trade_sec = trade_us // US_PER_SECOND
    quote_sec = quote_us // US_PER_SECOND
    if np.any(np.diff(trade_us) < 0) or np.any(np.diff(quote_us) < 0):
        raise ValueError("events must be ordered by time")
    seconds = np.concatenate([trade_sec[:1], trade_sec[-1:], quote_sec[:1], quote_sec[-1:]])
    if start_sec is None:
        start_sec = int(seconds.min()) if len(seconds) else 0
    if end_sec is None:
        end_sec = int(seconds.max()) if len(seconds) else start_sec - 1
    n = end_sec - start_sec + 1
    keep = (trade_sec >= start_sec) & (trade_sec <= end_sec)

    price = trades["price_e8"].to_numpy()[keep]
    qty = trades["qty_e8"].to_numpy()[keep]
    if "first_trade_id" in trades.column_names:
        first_ids = trades["first_trade_id"].to_numpy()[keep]
        last_ids = trades["last_trade_id"].to_numpy()[keep]
        weight = last_ids - first_ids + 1
    else:
        first_ids = last_ids = trades["trade_id"].to_numpy()[keep]
        weight = np.ones(len(price), dtype=np.int64)
    maker = trades["is_buyer_maker"].to_numpy(zero_copy_only=False)[keep]
    slot = (trade_sec[keep] - start_sec).astype(np.intp)
    time_us = trade_us[keep]

    starts = np.flatnonzero(np.r_[True, slot[1:] != slot[:-1]]) if len(slot) else slot
    ends = np.r_[starts[1:], len(slot)] - 1 if len(slot) else slot
    occupied = slot[starts]

    def per_second(values: np.ndarray, reduce: np.ufunc, fill: int) -> np.ndarray:
        column = np.full(n, fill, dtype=np.int64)
        if len(starts):
            column[occupied] = reduce.reduceat(values, starts)
        return column

    def at(values: np.ndarray, positions: np.ndarray, fill: int = NONE) -> np.ndarray:
        column = np.full(n, fill, dtype=np.int64)
        column[occupied] = values[positions]
        return column

    buy_qty = np.where(maker, 0, qty)
    notional = [0] * n
    for position, total in zip(occupied.tolist(), _notional_sums(price, qty, starts), strict=True):
        notional[position] = total

    top_of_book = {
        name: np.full(n, NONE, dtype=np.int64)
        for name in ("bid_price_e8", "ask_price_e8", "bid_qty_e8", "ask_qty_e8")
    }
    if quotes is not None and len(quote_us):
        quote_keep = (quote_sec >= start_sec) & (quote_sec <= end_sec)
        quote_slot = quote_sec[quote_keep] - start_sec
        last_in_second = np.flatnonzero(np.r_[quote_slot[1:] != quote_slot[:-1], True])
        for name, column in top_of_book.items():
            column[quote_slot[last_in_second]] = quotes[name].to_numpy()[quote_keep][last_in_second]

    return Bars(
        start_sec=start_sec,
        n_trades=per_second(weight, np.add, 0),
        buy_qty_e8=per_second(buy_qty, np.add, 0),
        sell_qty_e8=per_second(qty - buy_qty, np.add, 0),
        notional_e16=notional,
        first_price_e8=at(price, starts),
        last_price_e8=at(price, ends),
        max_qty_e8=per_second(qty, np.maximum, 0),
        last_trade_time_us=at(time_us, ends),
        first_trade_id=at(first_ids, starts),
        last_trade_id=at(last_ids, ends),
        **top_of_book,
    )


def _micros(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return pc.cast(column, pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_numpy()


_SPLIT = 24
_SPLIT_MASK = (1 << _SPLIT) - 1
_PART_LIMIT = 1 << 47
_GROUP_LIMIT = 1 << 16


def _notional_sums(price: np.ndarray, qty: np.ndarray, starts: np.ndarray) -> list[int]:
    """Exact ``sum(price * qty)`` per group of consecutive trades beginning at ``starts``.

    The products overflow int64, so each factor is split at 2**24 and the partial products,
    all below 2**48, are summed per group in int64 (no overflow below 2**16 trades a group),
    then recombined as Python ints. Inputs beyond those bounds take an exact pure-Python path.
    """
    if not len(starts):
        return []
    sizes = np.diff(np.r_[starts, len(price)])
    in_bounds = (
        price.min() >= 0
        and qty.min() >= 0
        and price.max() < _PART_LIMIT
        and qty.max() < _PART_LIMIT
    )
    if not in_bounds or sizes.max() >= _GROUP_LIMIT:
        prices, quantities = price.tolist(), qty.tolist()
        ends = np.r_[starts[1:], len(price)].tolist()
        return [
            sum(p * q for p, q in zip(prices[a:b], quantities[a:b], strict=True))
            for a, b in zip(starts.tolist(), ends, strict=True)
        ]
    price_high, price_low = price >> _SPLIT, price & _SPLIT_MASK
    qty_high, qty_low = qty >> _SPLIT, qty & _SPLIT_MASK
    high = np.add.reduceat(price_high * qty_high, starts)
    middle = np.add.reduceat(price_high * qty_low + price_low * qty_high, starts)
    low = np.add.reduceat(price_low * qty_low, starts)
    return [
        (h << (2 * _SPLIT)) + (m << _SPLIT) + lo
        for h, m, lo in zip(high.tolist(), middle.tolist(), low.tolist(), strict=True)
    ]
