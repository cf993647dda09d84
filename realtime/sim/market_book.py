"""The generator's limit order book: price-time priority queues of maker orders on the tick.

Pure state, no randomness and no events: the market model decides what happens and reads
back what changed. Prices are integer ticks, quantities e8 mantissas. Each side is keyed so
that its best level has the smallest key (bids ``-tick``, asks ``tick``); one code path then
serves both sides, and "``d`` ticks behind the best" is simply ``best_key + d``.

Invariants the model keeps: a side's keys are sorted, every key has a non-empty queue, and
a level's total is the sum of its queue.
"""

from __future__ import annotations

from bisect import bisect_left, insort

BID = 0
ASK = 1
SIGN = (-1, 1)
"""Key of a tick on each side: ``key = SIGN[side] * tick``."""


class BookSide:
    """One side of the book: sorted level keys, a FIFO queue of order quantities per level."""

    __slots__ = ("keys", "queues", "totals")

    def __init__(self) -> None:
        self.keys: list[int] = []
        """Level keys, best first."""
        self.queues: dict[int, list[int]] = {}
        """Key -> resting order quantities (e8), oldest first: the fill order."""
        self.totals: dict[int, int] = {}
        """Key -> level quantity (e8), the sum of its queue."""

    def add(self, key: int, qty_e8: int) -> int:
        """Queue an order at the back of level ``key``; return the level's new total."""
        queue = self.queues.get(key)
        if queue is None:
            insort(self.keys, key)
            self.queues[key] = [qty_e8]
            self.totals[key] = qty_e8
            return qty_e8
        queue.append(qty_e8)
        total = self.totals[key] + qty_e8
        self.totals[key] = total
        return total

    def cancel(self, key: int, position: int) -> int:
        """Remove the order at ``position`` in level ``key``'s queue; return the new total.

        A total of 0 means the level is gone.
        """
        queue = self.queues[key]
        total = self.totals[key] - queue.pop(position)
        if queue:
            self.totals[key] = total
            return total
        self._drop(key)
        return 0

    def fill(self, key: int, qty_e8: int) -> tuple[list[int], int]:
        """Fill up to ``qty_e8`` against level ``key`` oldest order first.

        Returns the maker fill quantities in order and the level's new total (0 = gone).
        """
        queue = self.queues[key]
        fills: list[int] = []
        remaining = qty_e8
        while remaining and queue:
            head = queue[0]
            if head <= remaining:
                fills.append(head)
                remaining -= head
                del queue[0]
            else:
                fills.append(remaining)
                queue[0] = head - remaining
                remaining = 0
        if not queue:
            self._drop(key)
            return fills, 0
        total = self.totals[key] - (qty_e8 - remaining)
        self.totals[key] = total
        return fills, total

    def _drop(self, key: int) -> None:
        del self.keys[bisect_left(self.keys, key)]
        del self.queues[key]
        del self.totals[key]


class LimitOrderBook:
    """Both sides of the book; ``sides[BID]`` and ``sides[ASK]``."""

    __slots__ = ("sides",)

    def __init__(self) -> None:
        self.sides = (BookSide(), BookSide())

    def top(self) -> tuple[int, int, int, int]:
        """``(bid_tick, bid_qty_e8, ask_tick, ask_qty_e8)``; both sides must be non-empty."""
        bids, asks = self.sides
        bid_key = bids.keys[0]
        ask_key = asks.keys[0]
        return -bid_key, bids.totals[bid_key], ask_key, asks.totals[ask_key]

    def spread_ticks(self) -> int:
        """Best ask minus best bid, in ticks; at least 1 while the book is not crossed."""
        return self.sides[BID].keys[0] + self.sides[ASK].keys[0]

    def levels(self, side: int) -> tuple[tuple[int, int], ...]:
        """``(tick, qty_e8)`` of every level of ``side``, best first."""
        book_side = self.sides[side]
        sign = SIGN[side]
        totals = book_side.totals
        return tuple((sign * key, totals[key]) for key in book_side.keys)
