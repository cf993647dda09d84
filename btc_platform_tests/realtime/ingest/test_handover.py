"""When a replacement connection may take over: its first trade and diff covered by what was
published, or its time is up."""

from __future__ import annotations

from realtime.ingest.dedup import Deduplicator
from realtime.ingest.handover import Handover
from realtime.market.events import BestBidAsk, DepthDiff, Trade, TradeBatch

T0 = 1_767_225_600_000_000


def batch(trade_id: int) -> TradeBatch:
    trade = Trade("BTCUSDT", trade_id, 98_000 * 10**8, 10**6, True, T0, T0)
    return TradeBatch("BTCUSDT", T0, T0, (trade,))


def diff(first_id: int, last_id: int) -> DepthDiff:
    return DepthDiff("BTCUSDT", T0, first_id, last_id, (), ())


def published(trade_id: int | None, diff_last_id: int | None) -> Deduplicator:
    dedup = Deduplicator()
    if trade_id is not None:
        dedup.admit(batch(trade_id))
    if diff_last_id is not None:
        dedup.admit(diff(diff_last_id, diff_last_id))
    return dedup


def test_it_catches_up_once_its_first_trade_and_first_diff_follow_what_was_published() -> None:
    handover = Handover("shutdown", started_s=0.0, timeout_s=5.0)
    handover.hold(BestBidAsk("BTCUSDT", T0, 7, 1, 2, 3, 4))
    handover.hold(batch(105))
    handover.hold(diff(51, 60))
    handover.hold(batch(106))
    assert (handover.first_trade_id, handover.first_diff_id) == (105, 51)
    assert not handover.caught_up(published(103, 50))  # trade 104 may still come on the old
    assert not handover.caught_up(published(104, 49))  # updates 50 may still come
    assert handover.caught_up(published(104, 50))
    assert handover.caught_up(published(110, 70))  # the old one went past: overlap, dropped


def test_it_waits_for_a_first_trade_and_diff_of_its_own_unless_nothing_was_published() -> None:
    handover = Handover("lifetime", started_s=0.0, timeout_s=5.0)
    handover.hold(diff(51, 60))
    assert not handover.caught_up(published(104, 50))
    assert handover.caught_up(published(None, 50))  # no trade on the old one to wait for
    assert handover.caught_up(published(None, None))


def test_it_is_overdue_after_its_timeout_or_when_it_holds_too_much() -> None:
    handover = Handover("silence", started_s=10.0, timeout_s=2.0, max_held=3)
    assert not handover.overdue(11.9)
    assert handover.overdue(12.0)
    for trade_id in (1, 2, 3):
        handover.hold(batch(trade_id))
    assert handover.overdue(10.0)


def test_drain_gives_the_held_messages_in_arrival_order_once() -> None:
    handover = Handover("shutdown", started_s=0.0, timeout_s=1.0)
    messages = [batch(1), diff(1, 2), batch(2)]
    for message in messages:
        handover.hold(message)
    assert handover.drain() == messages
    assert handover.drain() == []
