"""The plausibility policy: what is accepted, doubted, believed and refused (pure, no I/O)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from realtime.market.events import BestBidAsk, DepthDiff, DepthSnapshot, Trade, TradeBatch
from realtime.market.plausibility import (
    ACCEPTED,
    REPEATED,
    Doubt,
    EventFacts,
    ImplausibleEvent,
    Outcome,
    Plausibility,
    PlausibilityLimits,
    facts_of,
)

LIMITS = PlausibilityLimits(max_ahead_us=5_000_000, max_behind_us=60_000_000, max_id_jump=1_000_000)
EXCHANGE_US = 1_767_225_600_000_000
"""The local exchange's market starts 2026-01-01, whatever the wall clock says."""
WALL_US = 1_700_000_000_000_000
DAY_US = 86_400_000_000
FIRST_ID = 5_000_000_000


def trade(trade_id: int, time_us: int) -> EventFacts:
    return EventFacts("trade", trade_id, trade_id, time_us)


def anchored() -> Plausibility:
    """A policy that has believed its first trade (id ``FIRST_ID`` at ``EXCHANGE_US``)."""
    policy = Plausibility(LIMITS)
    first = trade(FIRST_ID, EXCHANGE_US)
    assert policy.check(first, WALL_US).doubt is Doubt.FIRST_TIME
    policy.settle(Doubt.FIRST_TIME, first, EXCHANGE_US + 1000, WALL_US)
    assert policy.check(first, WALL_US).doubt is Doubt.FIRST_ID
    policy.settle(Doubt.FIRST_ID, first, FIRST_ID + 3, WALL_US)
    assert policy.check(first, WALL_US) == ACCEPTED
    return policy


def test_the_first_event_is_believed_only_on_the_exchanges_word():
    policy = Plausibility(LIMITS)
    far = trade(FIRST_ID, EXCHANGE_US + DAY_US)
    assert policy.check(far, WALL_US).doubt is Doubt.FIRST_TIME
    with pytest.raises(ImplausibleEvent) as refused:
        policy.settle(Doubt.FIRST_TIME, far, EXCHANGE_US, WALL_US)
    assert refused.value.kind is Doubt.TIME_AHEAD
    assert policy.newest_us is None  # the refused event anchors nothing
    assert anchored().newest_us == EXCHANGE_US


def test_an_offset_market_clock_is_fine_and_a_day_ahead_is_doubted():
    policy = anchored()
    # The wall clock is years from the market's: only the drift since the newest counts.
    assert policy.check(trade(FIRST_ID + 1, EXCHANGE_US + 300_000), WALL_US + 1000) == ACCEPTED
    ahead = trade(FIRST_ID + 2, EXCHANGE_US + DAY_US)
    assert policy.check(ahead, WALL_US + 2000) == (Outcome.DOUBT, Doubt.TIME_AHEAD)
    assert policy.newest_us == EXCHANGE_US + 300_000  # nothing moved
    assert policy.check(trade(FIRST_ID + 2, EXCHANGE_US + 400_000), WALL_US + 3000) == ACCEPTED


def test_a_real_outage_moves_both_clocks_and_is_accepted():
    policy = anchored()
    hour_us = 3_600_000_000
    assert policy.check(trade(FIRST_ID + 1, EXCHANGE_US + hour_us), WALL_US + hour_us) == ACCEPTED


def test_a_time_far_behind_its_own_stream_is_doubted_and_other_streams_may_lag():
    policy = anchored()
    assert policy.check(trade(FIRST_ID + 1, EXCHANGE_US - 2 * DAY_US), WALL_US).doubt is (
        Doubt.TIME_BEHIND
    )
    # A book stream read behind the trades is no fault: each stream is judged by its own.
    quote = EventFacts("bestBidAsk", 77_000_000_000, 77_000_000_000, EXCHANGE_US - 90_000_000)
    policy.believe(Doubt.FIRST_ID, quote, WALL_US)
    assert policy.check(quote, WALL_US) == ACCEPTED


def test_an_id_jump_is_doubted_refused_below_the_exchanges_latest_and_believed_at_it():
    policy = anchored()
    jumped = trade(FIRST_ID + 10**12, EXCHANGE_US + 1000)
    assert policy.check(jumped, WALL_US).doubt is Doubt.ID_JUMP
    with pytest.raises(ImplausibleEvent) as refused:
        policy.settle(Doubt.ID_JUMP, jumped, FIRST_ID + 50, WALL_US)
    assert refused.value.kind is Doubt.ID_JUMP
    assert policy.last_id("trade") == FIRST_ID
    assert policy.check(trade(FIRST_ID + 1, EXCHANGE_US + 2000), WALL_US) == ACCEPTED
    # After a real long outage the exchange's latest id has passed the jump: believed.
    long_gap = trade(FIRST_ID + 3_000_000, EXCHANGE_US + 3000)
    assert policy.check(long_gap, WALL_US).doubt is Doubt.ID_JUMP
    policy.settle(Doubt.ID_JUMP, long_gap, FIRST_ID + 3_000_010, WALL_US)
    assert policy.check(long_gap, WALL_US) == ACCEPTED


def test_repeats_are_left_to_the_deduplication():
    policy = anchored()
    assert policy.check(trade(FIRST_ID, EXCHANGE_US + DAY_US), WALL_US) == REPEATED


def test_facts_of_every_stream_event():
    trades = (Trade("BTCUSDT", 7, 1, 1, False, 10, 11), Trade("BTCUSDT", 8, 1, 1, False, 10, 11))
    assert facts_of(TradeBatch("BTCUSDT", 11, 10, trades)) == EventFacts("trade", 7, 8, 10)
    assert facts_of(TradeBatch("BTCUSDT", 11, 10, ())) is None
    assert facts_of(trades[0]) == EventFacts("trade", 7, 7, 10)
    assert facts_of(BestBidAsk("BTCUSDT", 5, 9, 1, 1, 2, 1)) == EventFacts("bestBidAsk", 9, 9, 5)
    assert facts_of(DepthDiff("BTCUSDT", 5, 3, 4, (), ())) == EventFacts("depth", 3, 4, 5)
    assert facts_of(DepthSnapshot("BTCUSDT", None, 4, (), ())) == EventFacts("depth20", 4, 4, None)


@st.composite
def market_with_one_liar(draw):
    """A consistent trade stream (steps within the limits) and one lie inserted in it."""
    steps = draw(
        st.lists(
            st.tuples(
                st.integers(0, 2_000_000),  # exchange µs to the next trade
                st.integers(0, 2_000_000),  # wall µs to the next trade
                st.integers(1, 50),  # ids to the next trade
            ),
            min_size=1,
            max_size=40,
        )
    )
    time_us, wall_us, trade_id = EXCHANGE_US, WALL_US, FIRST_ID
    stream = []
    for dt_us, dwall_us, did in steps:
        time_us, wall_us, trade_id = time_us + dt_us, wall_us + dwall_us, trade_id + did
        stream.append((trade(trade_id, time_us), wall_us))
    at = draw(st.integers(0, len(stream) - 1))
    lie = draw(st.sampled_from(["ahead", "behind", "id"]))
    size = draw(st.integers(1, 10**6))
    facts, wall = stream[at]
    if lie == "ahead":
        bad = facts._replace(time_us=facts.time_us + LIMITS.max_ahead_us + DAY_US * size)
    elif lie == "behind":
        # Behind the first trade, hence behind the stream's newest at any point.
        bad = facts._replace(time_us=EXCHANGE_US - LIMITS.max_behind_us - size * 1000 - 1)
    else:
        bad = facts._replace(first_id=facts.first_id + LIMITS.max_id_jump + size * 1000)
        bad = bad._replace(last_id=bad.first_id)
    return stream, at, (bad, wall)


@settings(max_examples=100, deadline=None)
@given(market_with_one_liar())
def test_one_lie_is_doubted_and_never_changes_the_verdict_on_the_real_events(case):
    stream, at, (bad, bad_wall) = case
    honest, lied = anchored(), anchored()
    for index, (facts, wall_us) in enumerate(stream):
        if index == at:
            verdict = lied.check(bad, bad_wall)
            assert verdict.outcome is Outcome.DOUBT
            # The exchange's word, asked just after: its clock and ids are the real ones.
            evidence = facts.time_us if verdict.doubt.about_time else facts.last_id
            with pytest.raises(ImplausibleEvent):
                lied.settle(verdict.doubt, bad, evidence, bad_wall)
        assert lied.check(facts, wall_us) == honest.check(facts, wall_us) == ACCEPTED
    assert lied.newest_us == honest.newest_us
    assert lied.last_id("trade") == honest.last_id("trade")


def test_a_consumer_lagging_the_exchange_is_believed_at_its_first_event():
    # A replay at unlimited speed: the bus is read hours of market time behind the server.
    policy = Plausibility(LIMITS)
    first = trade(FIRST_ID, EXCHANGE_US)
    policy.settle(Doubt.FIRST_TIME, first, EXCHANGE_US + 3 * 3_600_000_000, WALL_US)
    assert policy.newest_us == EXCHANGE_US


def test_an_anchor_beyond_the_servers_clock_is_corrected_by_the_next_real_event():
    policy = anchored()
    # Believed once on a wrong word (it cannot happen with one exchange; here by force).
    policy.believe(Doubt.TIME_AHEAD, trade(FIRST_ID + 1, EXCHANGE_US + DAY_US), WALL_US)
    real = trade(FIRST_ID + 1, EXCHANGE_US + 1000)
    assert policy.check(real, WALL_US).doubt is Doubt.TIME_BEHIND
    policy.settle(Doubt.TIME_BEHIND, real, EXCHANGE_US + 2000, WALL_US)
    assert policy.check(real, WALL_US) == ACCEPTED
    assert policy.newest_us == EXCHANGE_US + 1000
