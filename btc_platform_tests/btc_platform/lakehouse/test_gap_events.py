"""Gap events of the live service: their stream key, parsing, and the hours they ask for."""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from btc_platform.lakehouse.completeness import US_PER_HOUR
from btc_platform.lakehouse.gap_events import (
    BINANCE_FIRST_DAY_US,
    FUTURE_TOLERANCE_US,
    MAX_HOURS_PER_EVENT,
    GapEvent,
    MalformedGapEvent,
    decode_fields,
    entry_id,
    gaps_key,
)

H0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
MINUTE = 60_000_000


def event(first_time_us: int, last_time_us: int) -> GapEvent:
    fields = {"first_time_us": str(first_time_us), "last_time_us": str(last_time_us)}
    return GapEvent.from_entry("1-0", fields)


def test_the_key_carries_the_upper_case_symbol_as_a_cluster_hash_tag():
    assert gaps_key("btcusdt") == gaps_key("BTCUSDT") == "gaps:{BTCUSDT}"
    # Only the tag is hashed: every key of one symbol lands in the same cluster slot.
    assert key_slot(gaps_key("btcusdt").encode()) == key_slot(b"BTCUSDT")
    assert key_slot(gaps_key("btcusdt").encode()) != key_slot(gaps_key("ethusdt").encode())


def test_an_entry_parses_with_its_kind_range_and_id_detail():
    fields = {
        "kind": "agg_trade_id_jump",
        "first_time_us": str(H0 + 5),
        "last_time_us": str(H0 + 9),
        "first_id": "3500000010",
        "last_id": "3500000019",
        "stream": "btcusdt@trade",
    }
    gap = GapEvent.from_entry("1767225600000-0", fields)
    assert gap == GapEvent(
        "1767225600000-0",
        "agg_trade_id_jump",
        H0 + 5,
        H0 + 9,
        "first_id=3500000010, last_id=3500000019",
    )


def test_an_entry_without_kind_or_ids_is_an_unknown_gap_without_detail():
    gap = event(H0, H0)
    assert (gap.kind, gap.detail) == ("unknown", "")


@pytest.mark.parametrize(
    "fields",
    [
        {"last_time_us": "10"},
        {"first_time_us": "10"},
        {"first_time_us": "ten", "last_time_us": "20"},
        {"first_time_us": "10", "last_time_us": "2.5e7"},
        {"first_time_us": "20", "last_time_us": "10"},
        {},
    ],
    ids=["no first", "no last", "not a number", "a float", "ends before it starts", "empty"],
)
def test_a_malformed_entry_raises_malformed_gap_event(fields):
    with pytest.raises(MalformedGapEvent, match="7-1"):
        GapEvent.from_entry("7-1", fields)


NOW = H0 + 10 * 24 * US_PER_HOUR


def checked(first_time_us: int, last_time_us: int, kind: str = "trade") -> GapEvent:
    fields = {"kind": kind, "first_time_us": str(first_time_us), "last_time_us": str(last_time_us)}
    return GapEvent.from_entry("7-1", fields, now_us=NOW)


@pytest.mark.parametrize(
    ("first_time_us", "last_time_us"),
    [
        (H0 * 1000, H0 * 1000 + 10**10),
        (H0, H0 * 1000),
        (H0 // 1000, H0 // 1000 + 60_000),
        (BINANCE_FIRST_DAY_US - 1, H0),
        (NOW, NOW + FUTURE_TOLERANCE_US + 1),
        (-5, H0),
    ],
    ids=[
        "nanoseconds",
        "a nanosecond end",
        "milliseconds",
        "before Binance's first day",
        "past now and its tolerance",
        "negative",
    ],
)
def test_times_that_are_no_plausible_microsecond_time_are_refused(first_time_us, last_time_us):
    with pytest.raises(MalformedGapEvent, match=r"7-1: \w+_time_us=.* is no µs time"):
        checked(first_time_us, last_time_us)


def test_the_plausible_range_ends_inclusive_at_both_bounds():
    assert checked(BINANCE_FIRST_DAY_US, BINANCE_FIRST_DAY_US).hours() == [BINANCE_FIRST_DAY_US]
    latest = NOW + FUTURE_TOLERANCE_US
    assert checked(latest, latest).last_time_us == latest


def test_a_range_longer_than_the_bound_is_refused_and_the_bound_itself_is_accepted():
    longest = checked(H0, H0 + MAX_HOURS_PER_EVENT * US_PER_HOUR - 1)
    assert len(longest.hours()) == MAX_HOURS_PER_EVENT
    with pytest.raises(MalformedGapEvent, match=f"{MAX_HOURS_PER_EVENT + 1} hours"):
        checked(H0, H0 + MAX_HOURS_PER_EVENT * US_PER_HOUR)
    with pytest.raises(MalformedGapEvent, match="more than the"):
        GapEvent("1-0", "trade", H0, H0 + 10**9 * US_PER_HOUR, "")  # however it is built


@pytest.mark.parametrize(
    ("kind", "reload"),
    [("trade", True), ("silence", False), ("depth", False), ("trade_id_jump", True)],
)
def test_only_gaps_that_may_have_lost_aggregate_trades_need_a_reload(kind, reload):
    assert checked(H0, H0 + 5, kind).needs_reload is reload


def test_fields_decode_as_utf8_and_anything_else_is_malformed():
    assert entry_id(b"1767225600000-3") == "1767225600000-3"
    assert decode_fields("1-0", {b"kind": "trade", "note": b"caf\xc3\xa9"}) == {
        "kind": "trade",
        "note": "café",
    }
    with pytest.raises(MalformedGapEvent, match=r"1-0: not UTF-8"):
        decode_fields("1-0", {b"kind": b"tr\xffde"})
    with pytest.raises(MalformedGapEvent, match=r"1-0: not UTF-8"):
        decode_fields("1-0", {b"\xfe": b"x"})


def test_a_refusal_quotes_a_bounded_part_of_the_entry():
    fields = {f"field{k}": "9" * 100_000 for k in range(1_000)}
    with pytest.raises(MalformedGapEvent) as refused:
        GapEvent.from_entry("7-1", fields, now_us=NOW)
    assert len(str(refused.value)) < 1_000


def test_malformed_gap_event_is_a_value_error():
    assert issubclass(MalformedGapEvent, ValueError)


@pytest.mark.parametrize(
    ("first_time_us", "last_time_us", "hours"),
    [
        (H0 + MINUTE, H0 + 2 * MINUTE, [H0]),
        (H0, H0, [H0]),
        (H0 + 59 * MINUTE, H0 + 61 * MINUTE, [H0, H0 + US_PER_HOUR]),
        (H0 + 30 * MINUTE, H0 + 150 * MINUTE, [H0 + k * US_PER_HOUR for k in range(3)]),
        (H0 + 30 * MINUTE, H0 + US_PER_HOUR - 1, [H0]),
        (H0 + 30 * MINUTE, H0 + US_PER_HOUR, [H0, H0 + US_PER_HOUR]),
        (H0 - 1, H0, [H0 - US_PER_HOUR, H0]),
    ],
    ids=[
        "inside one hour",
        "one instant",
        "across a boundary",
        "three hours",
        "up to an hour's last microsecond",
        "onto the next hour's first microsecond",
        "across midnight",
    ],
)
def test_hours_are_every_hour_the_lost_range_touches(first_time_us, last_time_us, hours):
    assert event(first_time_us, last_time_us).hours() == hours


def test_an_event_round_trips_through_the_redis_stream(redis_client):
    key = gaps_key("btcusdt")
    fields = {"kind": "silent_stream", "first_time_us": H0 + 1, "last_time_us": H0 + US_PER_HOUR}
    redis_client.xadd(key, fields)
    ((raw_id, raw_fields),) = redis_client.xrange(key)
    decoded = {k.decode(): v.decode() for k, v in raw_fields.items()}
    gap = GapEvent.from_entry(raw_id.decode(), decoded)
    assert (gap.kind, gap.first_time_us, gap.last_time_us) == (
        "silent_stream",
        H0 + 1,
        H0 + US_PER_HOUR,
    )
    assert gap.hours() == [H0, H0 + US_PER_HOUR]
