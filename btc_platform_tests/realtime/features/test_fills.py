"""Live fills fold into the lake's aggregate trades; seconds close behind a watermark."""

from __future__ import annotations

import pytest

from realtime.features.fills import FillAggregator
from realtime.features.watermark import SecondClock
from realtime.market.events import Trade

T0 = 1_767_225_600_000_000


def trade(trade_id: int, price: int, time_us: int, maker: bool = False, qty: int = 10) -> Trade:
    return Trade("BTCUSDT", trade_id, price, qty, maker, time_us, time_us)


def fold(trades: list[Trade]) -> list[tuple[int, int, int, int]]:
    fills = FillAggregator()
    done = [agg for agg in map(fills.add, trades) if agg is not None]
    last = fills.flush_through(10**12)
    done += [last] if last else []
    return [(a.first_trade_id, a.last_trade_id, a.price_e8, a.qty_e8) for a in done]


def test_one_taker_order_at_one_price_is_one_aggregate():
    trades = [trade(1, 100, T0), trade(2, 100, T0, qty=5), trade(3, 101, T0), trade(4, 101, T0)]
    assert fold(trades) == [(1, 2, 100, 15), (3, 4, 101, 20)]


@pytest.mark.parametrize(
    "second",
    [
        trade(2, 100, T0 + 1),  # another transact time
        trade(2, 100, T0, maker=True),  # the other side
        trade(3, 100, T0),  # an id gap
    ],
)
def test_a_fill_that_differs_in_time_side_or_id_starts_a_new_aggregate(second: Trade):
    assert len(fold([trade(1, 100, T0), second])) == 2


def test_the_held_run_completes_only_when_its_second_closes():
    fills = FillAggregator()
    assert fills.add(trade(1, 100, T0 + 1_500_000)) is None
    assert fills.flush_through(T0 // 1_000_000) is None
    done = fills.flush_through(T0 // 1_000_000 + 1)
    assert done is not None
    assert (done.first_trade_id, done.last_trade_id) == (1, 1)
    assert fills.open_second is None


def test_a_second_closes_after_a_later_trade_and_the_grace():
    clock = SecondClock(grace_us=250_000, quiet_us=1_000_000)
    assert clock.closable_through() is None
    s = T0 // 1_000_000
    clock.observe(T0 + 1_300_000)  # a depth diff of s+1: no later trade, s not quiet yet
    assert clock.closable_through() == s - 1
    clock.observe(T0 + 1_100_000, trade=True)  # a trade of s+1: s has all its trades
    assert clock.closable_through() == s
    clock.observe(T0)  # an older event never moves the clock back
    assert clock.closable_through() == s


def test_without_later_trades_a_second_closes_once_the_market_was_quiet_long_enough():
    clock = SecondClock(grace_us=250_000, quiet_us=1_000_000)
    s = T0 // 1_000_000
    clock.observe(T0 + 500_000, trade=True)
    clock.observe(T0 + 1_900_000)  # only quotes since: s may still see a late trade
    assert clock.closable_through() == s - 1
    clock.observe(T0 + 2_000_000)
    assert clock.closable_through() == s


def test_recovering_trades_holds_the_seconds_from_the_gap_on():
    clock = SecondClock(grace_us=0)
    clock.observe(T0 + 9_000_000, trade=True)
    clock.hold_from_sec = T0 // 1_000_000 + 3
    assert clock.closable_through() == T0 // 1_000_000 + 2
    clock.hold_from_sec = None
    assert clock.closable_through() == T0 // 1_000_000 + 8
