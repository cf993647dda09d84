"""Hypothesis strategies for the four SBE stream messages, in e8 fixed point."""

from __future__ import annotations

from hypothesis import strategies as st

from realtime.market.events import BestBidAsk, DepthDiff, DepthSnapshot, Trade, TradeBatch

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
NON_NEGATIVE_INT64 = st.integers(min_value=0, max_value=2**63 - 1)
TIME_US = st.integers(min_value=0, max_value=4_102_444_800_000_000)
SYMBOLS = st.sampled_from(["BTCUSDT", "ETHBTC", "1000SATSUSDT", "币安币USDT", ""])
LEVELS = st.lists(st.tuples(NON_NEGATIVE_INT64, NON_NEGATIVE_INT64), max_size=40).map(tuple)


@st.composite
def trade_batches(draw: st.DrawFn) -> TradeBatch:
    symbol = draw(SYMBOLS)
    event_time = draw(TIME_US)
    transact_time = draw(TIME_US)
    fills = draw(
        st.lists(
            st.tuples(NON_NEGATIVE_INT64, NON_NEGATIVE_INT64, NON_NEGATIVE_INT64, st.booleans()),
            min_size=1,
            max_size=8,
        )
    )
    trades = tuple(
        Trade(symbol, trade_id, price, qty, maker, transact_time, event_time)
        for trade_id, price, qty, maker in fills
    )
    return TradeBatch(symbol, event_time, transact_time, trades)


best_bid_asks = st.builds(
    BestBidAsk, SYMBOLS, TIME_US, NON_NEGATIVE_INT64, INT64, INT64, INT64, INT64
)
depth_snapshots = st.builds(DepthSnapshot, SYMBOLS, TIME_US, NON_NEGATIVE_INT64, LEVELS, LEVELS)
depth_diffs = st.builds(
    DepthDiff, SYMBOLS, TIME_US, NON_NEGATIVE_INT64, NON_NEGATIVE_INT64, LEVELS, LEVELS
)
messages = st.one_of(trade_batches(), best_bid_asks, depth_snapshots, depth_diffs)
