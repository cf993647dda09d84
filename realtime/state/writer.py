"""Writes the hot state to Redis: each closed second in one transaction, and re-anchors.

Per second, ``feat:{SYM}``, ``features:{SYM}:{ts}``, ``tr:{SYM}:1s|5s`` and ``ob:{SYM}`` are
replaced inside one ``MULTI … EXEC`` (``DEL`` then ``HSET``), so a reader sees a whole old
value or a whole new one.

A re-anchor (after a gap: book resynchronised from a REST snapshot, trades recovered by id,
windows recomputed) builds the new values under ``…:new:<token>`` names first, then swaps
all of them in with one ``MULTI RENAME … EXEC``. Readers never see a mix of old and new
state, and never an empty key. ``reanchor:{SYM}`` (``SET NX PX``) keeps two writers (an old
and a restarted features process) from interleaving their swaps.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import NamedTuple

import redis.asyncio as aioredis

from realtime.features.bars import Bar
from realtime.market.order_book import OrderBook
from realtime.state import hot_state
from realtime.state.keys import (
    FEATURES_TTL_S,
    HISTORY_TTL_S,
    REANCHOR_LOCK_MS,
    TRADE_STATS_TTL_S,
    Keys,
)

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class ClosedSecond(NamedTuple):
    """One closed second as the features role publishes it."""

    ts_sec: int
    vector: Sequence[float]
    flags: hot_state.FeatureFlags


class HotState(NamedTuple):
    """Everything a write replaces: the seconds closed since the last write (oldest first),
    the last five bars, the book (None while out of sync) and the exchange time."""

    seconds: Sequence[ClosedSecond]
    recent_bars: Sequence[Bar]
    book: OrderBook | None
    book_valid: bool
    exchange_time_us: int
    now_us: int


class ReanchorBusy(RuntimeError):
    """Another writer holds ``reanchor:{SYM}``; the caller retries later."""


class HotStateWriter:
    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    def _values(self, state: HotState) -> list[tuple[str, dict | bytes, int | None]]:
        """``(key, hash mapping or string value, ttl_s)`` for every key the state sets."""
        keys = self.keys
        values: list[tuple[str, dict | bytes, int | None]] = [
            (
                keys.book,
                hot_state.book_mapping(state.book, state.exchange_time_us, valid=state.book_valid),
                None,
            )
        ]
        if state.recent_bars:
            bars = state.recent_bars
            values.append(
                (
                    keys.trade_stats("1s"),
                    hot_state.trade_stats_mapping(bars[-1:]),
                    TRADE_STATS_TTL_S,
                )
            )
            values.append(
                (
                    keys.trade_stats("5s"),
                    hot_state.trade_stats_mapping(bars[-5:]),
                    TRADE_STATS_TTL_S,
                )
            )
        values.extend(
            (keys.features_at(second.ts_sec), hot_state.pack_vector(second.vector), HISTORY_TTL_S)
            for second in state.seconds
        )
        if state.seconds:
            newest = state.seconds[-1]
            mapping = hot_state.features_mapping(
                newest.ts_sec, newest.vector, newest.flags, state.exchange_time_us, state.now_us
            )
            values.append((keys.features, mapping, FEATURES_TTL_S))
        return values

    async def write(self, state: HotState) -> None:
        """Replace every key of ``state`` in one transaction."""
        async with self.client.pipeline(transaction=True) as pipe:
            for key, value, ttl in self._values(state):
                if isinstance(value, dict):
                    pipe.delete(key)
                    pipe.hset(key, mapping=value)
                    if ttl:
                        pipe.expire(key, ttl)
                else:
                    pipe.set(key, value, ex=ttl)
            await pipe.execute()

    async def reanchor(self, state: HotState) -> None:
        """Build ``state`` under staged names, then rename all of it into place at once."""
        token = secrets.token_hex(8)
        lock = self.keys.reanchor_lock
        if not await self.client.set(lock, token, nx=True, px=REANCHOR_LOCK_MS):
            raise ReanchorBusy(f"{lock} is held by another writer")
        try:
            values = self._values(state)
            async with self.client.pipeline(transaction=False) as pipe:
                for key, value, ttl in values:
                    staged = self.keys.staged(key, token)
                    if isinstance(value, dict):
                        pipe.hset(staged, mapping=value)
                        if ttl:
                            pipe.expire(staged, ttl)
                    else:
                        pipe.set(staged, value, ex=ttl)
                await pipe.execute()
            # RENAME carries the staged key's TTL along with its value.
            async with self.client.pipeline(transaction=True) as pipe:
                for key, _, _ in values:
                    pipe.rename(self.keys.staged(key, token), key)
                await pipe.execute()
        finally:
            await self.client.eval(_RELEASE, 1, lock, token)
