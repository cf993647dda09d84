"""Gap events of the live service: their stream key, parsing, and the hours they ask for."""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from btc_platform.lakehouse.completeness import US_PER_HOUR
from btc_platform.lakehouse.gap_events import GapEvent, MalformedGapEvent, gaps_key

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
