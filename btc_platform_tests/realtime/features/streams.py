"""Trade streams for feature tests: hypothesis strategies and table builders."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import strategies as st

from realtime.market.arrow_schemas import BEST_BID_ASK, TRADES

START_US = 1_767_225_600_000_000
TICK = 1_000_000


def trades_table(rows: list[tuple[int, int, int, bool]], first_id: int = 1) -> pa.Table:
    """``rows`` of (time_us, price_e8, qty_e8, is_buyer_maker) as a TRADES table."""
    return pa.table(
        {
            "trade_id": [first_id + i for i in range(len(rows))],
            "price_e8": [price for _, price, _, _ in rows],
            "qty_e8": [qty for _, _, qty, _ in rows],
            "quote_qty_e8": [0] * len(rows),
            "transact_time": pa.array([time for time, *_ in rows], pa.timestamp("us", tz="UTC")),
            "is_buyer_maker": [maker for *_, maker in rows],
            "is_best_match": [True] * len(rows),
        },
        schema=TRADES,
    )


def quotes_table(rows: list[tuple[int, int, int]]) -> pa.Table:
    """``rows`` of (time_us, bid_e8, ask_e8) as a BEST_BID_ASK table."""
    return pa.table(
        {
            "event_time": pa.array([time for time, _, _ in rows], pa.timestamp("us", tz="UTC")),
            "book_update_id": list(range(1, len(rows) + 1)),
            "bid_price_e8": [bid for _, bid, _ in rows],
            "bid_qty_e8": [100_000] * len(rows),
            "ask_price_e8": [ask for _, _, ask in rows],
            "ask_qty_e8": [200_000] * len(rows),
        },
        schema=BEST_BID_ASK,
    )


# Gaps mix several trades per second with silences of up to 20 s (empty seconds).
_GAPS_US = st.one_of(
    st.integers(min_value=0, max_value=400_000),
    st.integers(min_value=1_000_000, max_value=20_000_000),
)
_QTY = st.one_of(
    st.integers(min_value=1_000, max_value=5_000_000),
    st.integers(min_value=10**8, max_value=5 * 10**9),
)


@st.composite
def trade_rows(
    draw: st.DrawFn, min_size: int = 1, max_size: int = 150
) -> list[tuple[int, int, int, bool]]:
    """A time-ordered stream of trades on a 0.01 tick around 98,000."""
    steps = draw(
        st.lists(
            st.tuples(_GAPS_US, st.integers(min_value=-3, max_value=3), _QTY, st.booleans()),
            min_size=min_size,
            max_size=max_size,
        )
    )
    time_us = START_US + draw(st.integers(min_value=0, max_value=999_999))
    price = 98_000 * 10**8
    rows = []
    for gap, ticks, qty, maker in steps:
        time_us += gap
        price += ticks * TICK
        rows.append((time_us, price, qty, maker))
    return rows
