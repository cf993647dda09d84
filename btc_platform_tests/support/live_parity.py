"""The batch side of a live parity check: the exchange's aggregate trades over REST, through
the batch feature engine, from the second the live engine started.

Both engines then start at the same second, so every vector compares bit for bit (the
lake's own assets do the same from midnight; ``test_service_e2e`` checks those).
"""

from __future__ import annotations

import asyncio
import struct

import pyarrow as pa

from btc_platform.lakehouse.bronze_fetch import agg_trades_table
from realtime.binance.rest import AggTradePager, BinanceRestClient
from realtime.features.bars import US_PER_SECOND, bars_from_tables
from realtime.features.contract import CONTRACT_V1
from realtime.features.engine import batch_features

NAMES = CONTRACT_V1.names
SPREAD = NAMES.index("spread")


def rest_agg_trades(url: str, symbol: str, first_sec: int, last_sec: int) -> pa.Table:
    async def fetch() -> list:
        async with BinanceRestClient(url) as client:
            pager = AggTradePager(
                client,
                symbol,
                start_time_us=first_sec * US_PER_SECOND,
                end_time_us=(last_sec + 1) * US_PER_SECOND - 1,
            )
            return [agg async for page in pager for agg in page]

    return agg_trades_table(asyncio.run(fetch()))


def mismatches(
    live: dict[int, bytes], url: str, symbol: str
) -> tuple[list[tuple[int, str, float, float]], int]:
    """Features that differ between the live vectors and the batch engine over REST history
    (``spread`` aside: REST history has no quotes); and how many seconds were compared."""
    first, last = min(live), max(live)
    bars = bars_from_tables(
        rest_agg_trades(url, symbol, first, last), start_sec=first, end_sec=last
    )
    batch = batch_features(bars)
    differences = []
    for ts, payload in sorted(live.items()):
        vector = struct.unpack(f"<{len(NAMES)}d", payload)
        row = batch[ts - first]
        for index, name in enumerate(NAMES):
            if index != SPREAD and struct.pack("<d", vector[index]) != struct.pack(
                "<d", row[index]
            ):
                differences.append((ts, name, vector[index], float(row[index])))
    return differences, len(live)
