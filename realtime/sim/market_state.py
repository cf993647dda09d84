"""What the exchange knows at any moment: its tape, its book, its clock, its faults on REST.

The pump applies every source event here before it frames it, so REST answers and the
streams agree: a depth snapshot's ``lastUpdateId`` is the ``u`` of the last diff sent,
a trade is on the tape before its frame goes out.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from realtime.market.events import BestBidAsk, DepthDiff, DepthSnapshot, TradeBatch
from realtime.market.order_book import OrderBook
from realtime.sim.faults import Fault, FaultKind
from realtime.sim.source import SourceEvent
from realtime.sim.tape import TradeTape

US_PER_DAY = 86_400_000_000


@dataclass
class RestFaults:
    """Active REST faults: forced statuses, withheld id ranges, corrupted archive files."""

    forced_status: list[Fault] = field(default_factory=list)
    withheld: list[Fault] = field(default_factory=list)
    corrupted: set[tuple[str, dt.date]] = field(default_factory=set)

    def arm(self, fault: Fault) -> None:
        if fault.kind is FaultKind.REST_STATUS:
            self.forced_status.append(fault)
        elif fault.kind is FaultKind.WITHHOLD:
            self.withheld.append(fault)
        elif fault.kind is FaultKind.CORRUPT_ARCHIVE:
            if fault.archive_kind is None or fault.date is None:
                raise ValueError("corrupt_archive needs an archive kind and a date")
            self.corrupted.add((fault.archive_kind, fault.date))

    def take_forced_status(self) -> Fault | None:
        """The forced status for this request, if one is armed (each counts down)."""
        if not self.forced_status:
            return None
        fault = self.forced_status[0]
        if fault.count <= 1:
            self.forced_status.pop(0)
        else:
            self.forced_status[0] = dataclasses.replace(fault, count=fault.count - 1)
        return fault

    def withheld_ranges(self, ids: str) -> list[tuple[int, int]]:
        return [(f.first_id, f.last_id) for f in self.withheld if f.ids == ids]  # type: ignore[misc]

    def clear(self) -> None:
        self.forced_status.clear()
        self.withheld.clear()
        self.corrupted.clear()


class MarketState:
    """The exchange's tape, book and latest top of book, fed event by event."""

    def __init__(
        self,
        symbol: str,
        first_agg_trade_id: int,
        initial_book: DepthSnapshot,
        *,
        tick_size_e8: int,
        step_size_e8: int,
        now_us: Callable[[], int],
    ) -> None:
        self.symbol = symbol
        self.tape = TradeTape(symbol, first_agg_trade_id)
        self.book = OrderBook.from_snapshot(initial_book)
        self.tick_size_e8 = tick_size_e8
        self.step_size_e8 = step_size_e8
        self.best_bid_ask: BestBidAsk | None = None
        self.start_us: int | None = None
        self.last_event_us: int | None = None
        self.rest_faults = RestFaults()
        self._now_us = now_us

    def now_us(self) -> int:
        """The exchange's clock (market time), microseconds."""
        return self._now_us()

    def apply(self, event: SourceEvent) -> None:
        """Record one event: trades on the tape, diffs on the book, the latest top of book."""
        if isinstance(event, TradeBatch):
            self.tape.record(event)
            time_us = event.transact_time_us
        elif isinstance(event, DepthDiff):
            self.book.apply(event)
            time_us = event.event_time_us
        else:
            self.best_bid_ask = event
            time_us = event.event_time_us
        if self.start_us is None:
            self.start_us = time_us
        self.last_event_us = (
            time_us if self.last_event_us is None else max(self.last_event_us, time_us)
        )

    def archive_days(self) -> list[dt.date]:
        """UTC days that have ended since the market opened: the ones with a daily archive file.

        The market's first day is partial, as a real listing day's archive file is.
        """
        if self.start_us is None:
            return []
        first = self.start_us // US_PER_DAY
        last = self.now_us() // US_PER_DAY  # exclusive: that day has not ended
        epoch = dt.date(1970, 1, 1)
        return [epoch + dt.timedelta(days=day) for day in range(first, last)]
