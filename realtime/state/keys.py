"""The Redis keys of one symbol (ARCHITECTURE §4). ``{SYM}`` is a Redis Cluster hash tag:
every key of a symbol hashes to one slot, so a MULTI over them stays legal in a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

FEATURES_TTL_S = 120
"""``feat:{SYM}``: the latest vector; gone two minutes after the features role stops."""
HISTORY_TTL_S = 300
"""``features:{SYM}:{ts}``: the short per-second history the fallback repairs from."""
TRADE_STATS_TTL_S = 300
REANCHOR_LOCK_MS = 30_000
BUS_MAXLEN = 100_000
"""Entries per bus stream (each entry is a block of events); approximate trimming."""
PREDICTIONS_MAXLEN = 100_000
GAPS_MAXLEN = 10_000


@dataclass(frozen=True)
class Keys:
    symbol: str

    @property
    def tag(self) -> str:
        return "{" + self.symbol.upper() + "}"

    @property
    def book(self) -> str:
        return f"ob:{self.tag}"

    def trade_stats(self, window: str) -> str:
        """``window`` is ``1s`` or ``5s``."""
        return f"tr:{self.tag}:{window}"

    @property
    def features(self) -> str:
        return f"feat:{self.tag}"

    def features_at(self, ts_sec: int) -> str:
        return f"features:{self.tag}:{ts_sec}"

    @property
    def reanchor_lock(self) -> str:
        return f"reanchor:{self.tag}"

    def bus(self, kind: str) -> str:
        """``kind`` is ``trade``, ``bba`` or ``depth`` (depth20 snapshots ride on ``depth``)."""
        return f"md:{self.tag}:{kind}"

    @property
    def predictions(self) -> str:
        return f"pred:{self.tag}"

    @property
    def gaps(self) -> str:
        return f"gaps:{self.tag}"

    @property
    def model_current(self) -> str:
        return f"model:{self.tag}:current"

    def staged(self, key: str, token: str) -> str:
        """The temporary name a re-anchor builds ``key`` under (same hash slot)."""
        return f"{key}:new:{token}"
