"""The values of the hot-state keys, as pure functions: what the features role writes and
what the infer role and other readers parse back.

Feature vectors travel as little-endian float64 bytes: the bits the engine computed are
the bits a reader gets (a decimal rendering would need care with NaN and rounding). Every
hash carries ``n_fields``, so a reader can tell a complete value from anything else.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import NamedTuple

from realtime.features.bars import NONE, Bar
from realtime.features.contract import CONTRACT_V1
from realtime.market.fixed_point import e8_to_float
from realtime.market.order_book import OrderBook

BOOK_LEVELS = 10
_VECTOR = struct.Struct(f"<{len(CONTRACT_V1.names)}d")


class MalformedHotState(ValueError):
    """A hot-state value that is missing fields or does not parse."""


def pack_vector(vector: Sequence[float]) -> bytes:
    return _VECTOR.pack(*vector)


def unpack_vector(payload: bytes) -> tuple[float, ...]:
    if len(payload) != _VECTOR.size:
        raise MalformedHotState(f"a vector is {_VECTOR.size} bytes, got {len(payload)}")
    return _VECTOR.unpack(payload)


class FeatureFlags(NamedTuple):
    book_valid: bool
    trades_complete: bool
    """False when a trade gap could not be recovered before the second closed."""


class LatestFeatures(NamedTuple):
    """``feat:{SYM}`` parsed."""

    ts_sec: int
    vector: tuple[float, ...]
    contract: int
    flags: FeatureFlags
    exchange_time_us: int
    """The exchange's clock (newest event time seen) when the vector was written..."""
    written_us: int
    """...and the writer's wall clock at that moment: readers estimate exchange time now."""


def features_mapping(
    ts_sec: int, vector: Sequence[float], flags: FeatureFlags, exchange_time_us: int, now_us: int
) -> dict[str, bytes | str]:
    mapping: dict[str, bytes | str] = {
        "ts": str(ts_sec),
        "contract": str(CONTRACT_V1.version),
        "vector": pack_vector(vector),
        "book_valid": "1" if flags.book_valid else "0",
        "trades_complete": "1" if flags.trades_complete else "0",
        "exchange_time_us": str(exchange_time_us),
        "written_us": str(now_us),
    }
    mapping["n_fields"] = str(len(mapping) + 1)
    return mapping


def parse_features(fields: dict[bytes, bytes]) -> LatestFeatures:
    """``feat:{SYM}`` from ``HGETALL`` (bytes keys and values)."""
    _check_complete(fields)
    try:
        return LatestFeatures(
            ts_sec=int(fields[b"ts"]),
            vector=unpack_vector(fields[b"vector"]),
            contract=int(fields[b"contract"]),
            flags=FeatureFlags(fields[b"book_valid"] == b"1", fields[b"trades_complete"] == b"1"),
            exchange_time_us=int(fields[b"exchange_time_us"]),
            written_us=int(fields[b"written_us"]),
        )
    except (KeyError, ValueError) as error:
        raise MalformedHotState(f"feat: {error}") from error


def book_mapping(book: OrderBook | None, exchange_time_us: int, *, valid: bool) -> dict[str, str]:
    """``ob:{SYM}``: the top of the book, 10 levels a side; ``valid`` 0 while out of sync."""
    mapping: dict[str, str] = {"valid": "1" if valid and book is not None else "0"}
    mapping["ts_us"] = str(exchange_time_us)
    if book is not None:
        bids, asks = book.top(BOOK_LEVELS)
        mapping["last_update_id"] = str(book.last_update_id)
        for side, levels in (("bid", bids), ("ask", asks)):
            for index, (price, qty) in enumerate(levels):
                mapping[f"{side}_{index}_price"] = repr(e8_to_float(price))
                mapping[f"{side}_{index}_qty"] = repr(e8_to_float(qty))
        if bids and asks:
            mapping["best_bid"] = repr(e8_to_float(bids[0][0]))
            mapping["best_ask"] = repr(e8_to_float(asks[0][0]))
            mapping["spread"] = repr(e8_to_float(asks[0][0] - bids[0][0]))
    mapping["n_fields"] = str(len(mapping) + 1)
    return mapping


def trade_stats_mapping(bars: Sequence[Bar]) -> dict[str, str]:
    """``tr:{SYM}:1s`` / ``:5s``: the trade statistics of the last closed seconds."""
    buy = sum(bar.buy_qty_e8 for bar in bars)
    sell = sum(bar.sell_qty_e8 for bar in bars)
    notional = sum(bar.notional_e16 for bar in bars)
    traded = [bar for bar in bars if bar.last_price_e8 != NONE]
    mapping = {
        "ts": str(bars[-1].ts_sec),
        "seconds": str(len(bars)),
        "n_trades": str(sum(bar.n_trades for bar in bars)),
        "buy_qty": repr(e8_to_float(buy)),
        "sell_qty": repr(e8_to_float(sell)),
        "vwap": repr(notional / (buy + sell) / 1e8) if buy + sell else "",
        "last_price": repr(e8_to_float(traded[-1].last_price_e8)) if traded else "",
        "first_trade_id": str(traded[0].first_trade_id) if traded else "",
        "last_trade_id": str(traded[-1].last_trade_id) if traded else "",
    }
    mapping["n_fields"] = str(len(mapping) + 1)
    return mapping


def is_complete(fields: dict[bytes, bytes]) -> bool:
    """Whether a hash read back is one whole value (what a concurrent reader checks)."""
    try:
        return bool(fields) and int(fields[b"n_fields"]) == len(fields)
    except (KeyError, ValueError):
        return False


def _check_complete(fields: dict[bytes, bytes]) -> None:
    if not is_complete(fields):
        raise MalformedHotState(f"incomplete hash: {sorted(fields)}")
