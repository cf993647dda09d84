"""Gap detectors: trade id jumps, depth chain breaks, silent spells; and the record's fields."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from btc_platform.lakehouse.gap_events import GapEvent
from realtime.ingest.gaps import (
    DepthChainTracker,
    GapKind,
    GapRecord,
    SilenceWatch,
    TradeIdTracker,
)
from realtime.market.events import DepthDiff, Trade

T0 = 1_767_225_600_000_000
DETECTED = 1_800_000_000_000_000


def trade(trade_id: int, time_us: int) -> Trade:
    return Trade("BTCUSDT", trade_id, 98_000 * 10**8, 10**6, False, time_us, time_us)


def diff(first_id: int, last_id: int, time_us: int) -> DepthDiff:
    return DepthDiff("BTCUSDT", time_us, first_id, last_id, (), ())


def test_a_trade_id_jump_is_a_gap_of_exactly_the_skipped_ids_between_the_two_trades() -> None:
    tracker = TradeIdTracker()
    assert tracker.observe(trade(100, T0), detected_us=DETECTED) is None
    assert tracker.observe(trade(101, T0 + 5), detected_us=DETECTED) is None
    gap = tracker.observe(trade(105, T0 + 90), detected_us=DETECTED)
    assert gap == GapRecord(GapKind.TRADE, T0 + 5, T0 + 90, 102, 104, DETECTED)
    assert tracker.observe(trade(106, T0 + 91), detected_us=DETECTED) is None
    assert (tracker.last_id, tracker.last_time_us) == (106, T0 + 91)


def test_a_trade_at_or_below_the_last_id_is_neither_a_gap_nor_progress() -> None:
    tracker = TradeIdTracker()
    tracker.observe(trade(10, T0), detected_us=DETECTED)
    assert tracker.observe(trade(10, T0), detected_us=DETECTED) is None
    assert tracker.observe(trade(7, T0 - 1), detected_us=DETECTED) is None
    assert tracker.last_id == 10
    assert tracker.observe(trade(11, T0 + 1), detected_us=DETECTED) is None


@given(st.lists(st.integers(1, 60), min_size=1, max_size=80, unique=True))
def test_gaps_and_seen_trades_cover_every_id_from_first_to_last_once(ids: list[int]) -> None:
    ordered = sorted(ids)
    tracker = TradeIdTracker()
    covered: list[int] = []
    for trade_id in ordered:
        gap = tracker.observe(trade(trade_id, T0 + trade_id), detected_us=DETECTED)
        if gap is not None:
            assert gap.first_time_us <= gap.last_time_us
            covered.extend(range(gap.first_id, gap.last_id + 1))  # type: ignore[arg-type]
        covered.append(trade_id)
    assert covered == list(range(ordered[0], ordered[-1] + 1))


def test_a_depth_diff_that_does_not_start_at_the_previous_end_plus_one_is_a_gap() -> None:
    chain = DepthChainTracker()
    assert chain.observe(diff(1, 10, T0), detected_us=DETECTED) is None
    assert chain.observe(diff(11, 15, T0 + 100), detected_us=DETECTED) is None
    gap = chain.observe(diff(21, 30, T0 + 300), detected_us=DETECTED)
    assert gap == GapRecord(GapKind.DEPTH, T0 + 100, T0 + 300, 16, 20, DETECTED)
    assert chain.last_update_id == 30


def test_a_depth_diff_overlapping_the_chain_loses_nothing_and_a_stale_one_is_ignored() -> None:
    chain = DepthChainTracker()
    chain.observe(diff(1, 10, T0), detected_us=DETECTED)
    assert chain.observe(diff(5, 10, T0), detected_us=DETECTED) is None  # stale
    assert chain.last_update_id == 10
    assert chain.observe(diff(8, 14, T0 + 1), detected_us=DETECTED) is None  # straddles
    assert chain.last_update_id == 14


def test_silence_is_one_gap_per_silent_spell_from_the_last_exchange_time() -> None:
    watch = SilenceWatch(5.0)
    watch.observe("trade", T0, now_s=100.0)
    assert watch.check(104.9, detected_us=DETECTED) == []
    (gap,) = watch.check(105.5, detected_us=DETECTED)
    assert gap == GapRecord(GapKind.SILENCE, T0, T0 + 5_500_000, None, None, DETECTED)
    assert watch.check(200.0, detected_us=DETECTED) == []  # the same spell
    assert watch.silent_for("trade", 200.0) == 100.0
    watch.observe("trade", T0 + 100_000_000, now_s=200.0)  # the spell ends
    assert watch.check(204.0, detected_us=DETECTED) == []
    (again,) = watch.check(206.0, detected_us=DETECTED)
    assert again.first_time_us == T0 + 100_000_000


def test_silence_watches_each_stream_alone_and_only_the_streams_it_is_given() -> None:
    watch = SilenceWatch(1.0, streams=("trade", "depth"))
    watch.observe("trade", T0, now_s=0.0)
    watch.observe("depth", T0, now_s=0.0)
    watch.observe("bestBidAsk", T0, now_s=0.0)
    watch.observe("depth", T0 + 1_000_000, now_s=1.0)
    assert [gap.kind for gap in watch.check(1.5, detected_us=DETECTED)] == ["silence"]
    assert watch.silent_for("bestBidAsk", 1.5) is None
    assert watch.silent_for("never", 1.5) is None


def test_the_record_fields_are_what_the_lake_sensor_reads_and_ids_are_left_out_when_unknown():
    trade_gap = GapRecord(GapKind.TRADE, T0, T0 + 9, 102, 104, DETECTED)
    fields = trade_gap.to_fields()
    assert fields == {
        "kind": "trade",
        "first_time_us": str(T0),
        "last_time_us": str(T0 + 9),
        "first_id": "102",
        "last_id": "104",
        "detected_us": str(DETECTED),
    }
    event = GapEvent.from_entry("1-0", fields)
    assert (event.kind, event.first_time_us, event.last_time_us) == ("trade", T0, T0 + 9)
    assert event.detail == "first_id=102, last_id=104"
    silence = GapRecord(GapKind.SILENCE, T0, T0 + 5, None, None, DETECTED).to_fields()
    assert set(silence) == {"kind", "first_time_us", "last_time_us", "detected_us"}
    assert GapEvent.from_entry("2-0", silence).kind == "silence"
