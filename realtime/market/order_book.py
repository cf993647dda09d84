"""The local order book: integer price levels kept sorted, and Binance's update rule.

Each side is a dict ``price_e8 -> qty_e8`` plus a sorted list of keys maintained with
``bisect``. Keys are ``price_e8`` for bids and ``-price_e8`` for asks, so on both sides the
best level is the *last* key: diffs mostly touch levels near the top, and inserting or
deleting near the end of a list moves few pointers, while top-N reads are a slice.

The book trusts its input (the decoder has checked it); it never guesses a missing level.
Whether a diff may be applied at all is decided by :func:`diff_applies` (SPEC section 3).
"""

from __future__ import annotations

from bisect import bisect_left, insort

from realtime.market.events import DepthDiff, DepthSnapshot, PriceLevel

__all__ = ["BookOutOfSync", "OrderBook", "diff_applies"]


class BookOutOfSync(Exception):
    """Book updates were missed: the next diff had to start at ``expected_first_id``.

    ``got_first_id`` is the first update id of the diff that arrived instead; the ids in
    between are lost, so the book no longer matches the exchange and must be re-anchored.
    """

    def __init__(self, expected_first_id: int, got_first_id: int) -> None:
        self.expected_first_id = expected_first_id
        self.got_first_id = got_first_id
        super().__init__(
            f"book out of sync: expected a diff starting at or before update id "
            f"{expected_first_id}, got one starting at {got_first_id} "
            f"({got_first_id - expected_first_id} update ids missing)"
        )


def diff_applies(book_update_id: int, diff: DepthDiff) -> bool:
    """Binance's update rule: True to apply ``diff`` to a book at ``book_update_id``.

    False when the diff is stale (``u <= book id``: already in the book, or a duplicate).
    Raises :class:`BookOutOfSync` when ``U > book id + 1``: updates in between were missed.
    A diff overlapping the book id (``U <= book id + 1 <= u``) applies: its quantities are
    absolute, so re-setting levels the book already has is harmless.
    """
    if diff.last_update_id <= book_update_id:
        return False
    if diff.first_update_id > book_update_id + 1:
        raise BookOutOfSync(book_update_id + 1, diff.first_update_id)
    return True


def _apply_levels(
    qty_by_price: dict[int, int], keys: list[int], levels: tuple[PriceLevel, ...], sign: int
) -> None:
    # Hot path (every diff): locals only, one dict probe per level, bisect only when the
    # set of prices changes.
    for price, qty in levels:
        if qty:
            if price not in qty_by_price:
                insort(keys, sign * price)
            qty_by_price[price] = qty
        elif qty_by_price.pop(price, None) is not None:
            del keys[bisect_left(keys, sign * price)]


def _load_side(levels: tuple[PriceLevel, ...], sign: int) -> tuple[dict[int, int], list[int]]:
    qty_by_price = {price: qty for price, qty in levels if qty}
    return qty_by_price, sorted(sign * price for price in qty_by_price)


class OrderBook:
    """Bids and asks of one symbol at book update id ``last_update_id``; prices/qty in e8."""

    __slots__ = ("_ask_keys", "_ask_qty", "_bid_keys", "_bid_qty", "last_update_id", "symbol")

    def __init__(self, symbol: str, last_update_id: int = 0) -> None:
        self.symbol = symbol
        self.last_update_id = last_update_id
        self._bid_qty: dict[int, int] = {}
        self._bid_keys: list[int] = []  # price_e8 ascending: best bid last
        self._ask_qty: dict[int, int] = {}
        self._ask_keys: list[int] = []  # -price_e8 ascending: best ask last

    @classmethod
    def from_snapshot(cls, snapshot: DepthSnapshot) -> OrderBook:
        """A book holding exactly the snapshot's levels, at its ``last_update_id``.

        Levels of quantity 0 are skipped; a price listed twice keeps its last quantity.
        """
        book = cls(snapshot.symbol, snapshot.last_update_id)
        book._bid_qty, book._bid_keys = _load_side(snapshot.bids, 1)
        book._ask_qty, book._ask_keys = _load_side(snapshot.asks, -1)
        return book

    def apply(self, diff: DepthDiff) -> None:
        """Set every level of ``diff`` (absolute quantity; 0 removes) and take its last id.

        Applies unconditionally: use :meth:`update` for Binance's continuity rule. Removing
        a level the book does not hold is a no-op (it may lie beyond the snapshot's depth).
        """
        if diff.bids:
            _apply_levels(self._bid_qty, self._bid_keys, diff.bids, 1)
        if diff.asks:
            _apply_levels(self._ask_qty, self._ask_keys, diff.asks, -1)
        self.last_update_id = diff.last_update_id

    def update(self, diff: DepthDiff) -> bool:
        """Apply ``diff`` under Binance's update rule; False if it was stale and ignored.

        Raises :class:`BookOutOfSync` (book unchanged) when updates were missed.
        """
        if not diff_applies(self.last_update_id, diff):
            return False
        self.apply(diff)
        return True

    def best_bid(self) -> PriceLevel | None:
        """The highest bid ``(price_e8, qty_e8)``, or None if there are no bids."""
        keys = self._bid_keys
        if not keys:
            return None
        price = keys[-1]
        return price, self._bid_qty[price]

    def best_ask(self) -> PriceLevel | None:
        """The lowest ask ``(price_e8, qty_e8)``, or None if there are no asks."""
        keys = self._ask_keys
        if not keys:
            return None
        price = -keys[-1]
        return price, self._ask_qty[price]

    def top(self, n: int) -> tuple[tuple[PriceLevel, ...], tuple[PriceLevel, ...]]:
        """The best ``n`` levels of each side, best first: ``(bids, asks)``.

        Bids descend in price, asks ascend; a side with fewer levels returns all it has.
        """
        if n < 0:
            raise ValueError(f"top(n) needs n >= 0, got {n}")
        bid_qty = self._bid_qty
        ask_qty = self._ask_qty
        stop = -n - 1
        bids = tuple([(price, bid_qty[price]) for price in self._bid_keys[-1:stop:-1]])
        asks = tuple([(-key, ask_qty[-key]) for key in self._ask_keys[-1:stop:-1]])
        return bids, asks

    def snapshot(self, limit: int | None = None) -> DepthSnapshot:
        """The book as a :class:`DepthSnapshot` of at most ``limit`` levels a side (None: all).

        ``event_time_us`` is None: the book knows update ids, not exchange times.
        """
        if limit is None:
            limit = max(len(self._bid_keys), len(self._ask_keys))
        bids, asks = self.top(limit)
        return DepthSnapshot(self.symbol, None, self.last_update_id, bids, asks)

    def bid_qty(self, price_e8: int) -> int:
        """Quantity (e8) bid at ``price_e8``; 0 if the book holds no such level."""
        return self._bid_qty.get(price_e8, 0)

    def ask_qty(self, price_e8: int) -> int:
        """Quantity (e8) offered at ``price_e8``; 0 if the book holds no such level."""
        return self._ask_qty.get(price_e8, 0)

    @property
    def bid_level_count(self) -> int:
        """Number of bid price levels held."""
        return len(self._bid_keys)

    @property
    def ask_level_count(self) -> int:
        """Number of ask price levels held."""
        return len(self._ask_keys)

    @property
    def level_count(self) -> int:
        """Number of price levels held, both sides together."""
        return len(self._bid_keys) + len(self._ask_keys)

    def is_crossed(self) -> bool:
        """True if the best bid is at or above the best ask: a book the exchange cannot have."""
        return bool(self._bid_keys and self._ask_keys) and self._bid_keys[-1] >= -self._ask_keys[-1]

    def __repr__(self) -> str:
        return (
            f"OrderBook({self.symbol!r}, last_update_id={self.last_update_id}, "
            f"bids={self.bid_level_count}, asks={self.ask_level_count}, "
            f"best_bid={self.best_bid()}, best_ask={self.best_ask()})"
        )
