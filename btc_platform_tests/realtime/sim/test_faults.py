"""Fault descriptions (parsed from JSON) and what a stream's faults do to its frames."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from realtime.binance.sbe import SbeDecodeError, decode
from realtime.binance.sbe.encode import encode
from realtime.market.events import DepthDiff, Trade, TradeBatch
from realtime.sim.faults import (
    Fault,
    FaultKind,
    FaultSpecError,
    StreamFaults,
    parse_fault,
)

DEPTH = "btcusdt@depth"

# -- parsing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {"fault": "drop", "stream": DEPTH, "count": 3},
            Fault(FaultKind.DROP, stream=DEPTH, count=3),
        ),
        ({"fault": "drop", "stream": DEPTH}, Fault(FaultKind.DROP, stream=DEPTH, count=1)),
        (
            {"fault": "duplicate", "stream": DEPTH, "count": 2, "at_s": 1.5},
            Fault(FaultKind.DUPLICATE, at_s=1.5, stream=DEPTH, count=2),
        ),
        (
            {"fault": "reorder", "stream": "btcusdt@trade", "count": 4},
            Fault(FaultKind.REORDER, stream="btcusdt@trade", count=4),
        ),
        (
            {"fault": "truncate", "stream": DEPTH, "count": 2, "keep_bytes": 10},
            Fault(FaultKind.TRUNCATE, stream=DEPTH, count=2, keep_bytes=10),
        ),
        (
            {"fault": "truncate", "stream": DEPTH},
            Fault(FaultKind.TRUNCATE, stream=DEPTH, keep_bytes=None),
        ),
        (
            {"fault": "stall", "stream": "btcusdt@trade", "seconds": 5},
            Fault(FaultKind.STALL, stream="btcusdt@trade", seconds=5.0),
        ),
        ({"fault": "disconnect"}, Fault(FaultKind.DISCONNECT)),
        ({"fault": "server_shutdown", "at_s": 30}, Fault(FaultKind.SERVER_SHUTDOWN, at_s=30.0)),
        (
            {"fault": "rest_status", "status": 429, "count": 2, "retry_after_s": 7},
            Fault(FaultKind.REST_STATUS, status=429, count=2, retry_after_s=7),
        ),
        (
            {"fault": "rest_status", "status": 418},
            Fault(FaultKind.REST_STATUS, status=418, count=1, retry_after_s=60),
        ),
        (
            {"fault": "withhold", "ids": "agg_trade", "first_id": 5, "last_id": 9},
            Fault(FaultKind.WITHHOLD, ids="agg_trade", first_id=5, last_id=9),
        ),
        (
            {"fault": "withhold", "ids": "trade", "first_id": 7, "last_id": 7},
            Fault(FaultKind.WITHHOLD, ids="trade", first_id=7, last_id=7),
        ),
        (
            {"fault": "corrupt_archive", "kind": "aggTrades", "date": "2026-01-01"},
            Fault(FaultKind.CORRUPT_ARCHIVE, archive_kind="aggTrades", date=dt.date(2026, 1, 1)),
        ),
        ({"fault": "clear"}, Fault(FaultKind.CLEAR)),
    ],
)
def test_parse_fault_accepts_every_documented_shape(spec: dict[str, Any], expected: Fault) -> None:
    assert parse_fault(spec) == expected


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ({"fault": "explode"}, "'fault'"),
        ({"stream": DEPTH}, "'fault'"),
        ({"fault": "drop"}, "'stream'"),
        ({"fault": "drop", "stream": "depth"}, "'stream'"),
        ({"fault": "drop", "stream": DEPTH, "count": 0}, "'count'"),
        ({"fault": "drop", "stream": DEPTH, "count": "3"}, "'count'"),
        ({"fault": "drop", "stream": DEPTH, "count": True}, "'count'"),
        ({"fault": "drop", "stream": DEPTH, "count": 1.5}, "'count'"),
        ({"fault": "truncate", "stream": DEPTH, "keep_bytes": 0}, "'keep_bytes'"),
        ({"fault": "stall", "stream": DEPTH}, "'seconds'"),
        ({"fault": "stall", "stream": DEPTH, "seconds": 0}, "'seconds'"),
        ({"fault": "stall", "stream": DEPTH, "seconds": "5"}, "'seconds'"),
        ({"fault": "disconnect", "at_s": "soon"}, "'at_s'"),
        ({"fault": "disconnect", "at_s": False}, "'at_s'"),
        ({"fault": "rest_status", "status": 500}, "'status'"),
        ({"fault": "rest_status"}, "'status'"),
        ({"fault": "rest_status", "status": 429, "count": -1}, "'count'"),
        ({"fault": "rest_status", "status": 429, "retry_after_s": 0}, "'retry_after_s'"),
        ({"fault": "withhold", "ids": "order", "first_id": 1, "last_id": 2}, "'ids'"),
        ({"fault": "withhold", "ids": "trade", "first_id": 3, "last_id": 2}, "'first_id'"),
        ({"fault": "withhold", "ids": "trade", "first_id": "1", "last_id": 2}, "'first_id'"),
        ({"fault": "withhold", "ids": "trade", "last_id": 2}, "'first_id'"),
        ({"fault": "withhold", "ids": "trade", "first_id": True, "last_id": 2}, "'first_id'"),
        ({"fault": "corrupt_archive", "kind": "bookTicker", "date": "2026-01-01"}, "'kind'"),
        ({"fault": "corrupt_archive", "kind": "trades", "date": "2026-13-01"}, "'date'"),
        ({"fault": "corrupt_archive", "kind": "trades"}, "'date'"),
    ],
)
def test_parse_fault_rejects_bad_specs_naming_the_field(spec: dict[str, Any], named: str) -> None:
    with pytest.raises(FaultSpecError) as raised:
        parse_fault(spec)
    assert named in str(raised.value)


@pytest.mark.parametrize("spec", [[{"fault": "clear"}], "drop", None, 3])
def test_a_fault_is_a_json_object(spec: Any) -> None:
    with pytest.raises(FaultSpecError, match="JSON object"):
        parse_fault(spec)


# -- stream faults ---------------------------------------------------------------------------

FRAMES = [f"frame-{i}".encode() for i in range(8)]


def run(faults: StreamFaults, frames: list[bytes], now: float = 0.0) -> list[list[bytes]]:
    return [faults.process(frame, now) for frame in frames]


def armed(*specs: dict[str, Any], now: float = 0.0) -> StreamFaults:
    faults = StreamFaults()
    for spec in specs:
        faults.arm(parse_fault({"stream": DEPTH, **spec}), now)
    return faults


def test_no_fault_passes_every_frame_once() -> None:
    faults = StreamFaults()
    assert faults.idle
    assert run(faults, FRAMES[:3]) == [[f] for f in FRAMES[:3]]


def test_drop_loses_the_next_count_frames() -> None:
    faults = armed({"fault": "drop", "count": 2})
    assert not faults.idle
    f0, f1, f2, f3 = FRAMES[:4]
    assert run(faults, [f0, f1, f2, f3]) == [[], [], [f2], [f3]]
    assert faults.dropped_total == 2
    assert faults.idle


def test_counts_of_the_same_kind_add_up() -> None:
    faults = armed({"fault": "drop", "count": 2}, {"fault": "drop", "count": 3})
    assert faults.drop == 5
    assert run(faults, FRAMES[:6]) == [[], [], [], [], [], [FRAMES[5]]]
    assert faults.dropped_total == 5
    duplicated = armed({"fault": "duplicate", "count": 1}, {"fault": "duplicate", "count": 1})
    f0, f1, f2 = FRAMES[:3]
    assert run(duplicated, [f0, f1, f2]) == [[f0, f0], [f1, f1], [f2]]


def test_duplicate_sends_the_frame_twice() -> None:
    faults = armed({"fault": "duplicate", "count": 1})
    f0, f1 = FRAMES[:2]
    assert run(faults, [f0, f1]) == [[f0, f0], [f1]]
    assert faults.idle


def test_reorder_swaps_each_held_frame_with_the_next() -> None:
    faults = armed({"fault": "reorder", "count": 2})
    f0, f1, f2, f3, f4 = FRAMES[:5]
    assert run(faults, [f0, f1, f2, f3, f4]) == [[], [f1, f0], [], [f3, f2], [f4]]
    assert faults.idle


def test_truncate_cuts_frames_short() -> None:
    faults = armed({"fault": "truncate", "count": 1, "keep_bytes": 3})
    assert run(faults, [b"abcdef", b"ghijkl"]) == [[b"abc"], [b"ghijkl"]]
    halved = armed({"fault": "truncate", "count": 1})
    assert run(halved, [b"abcdef"]) == [[b"abc"]]
    # Asking to keep more than the frame still cuts it: a truncated frame is never whole.
    long_keep = armed({"fault": "truncate", "count": 2, "keep_bytes": 100})
    assert run(long_keep, [b"abcdef", b"a"]) == [[b"abcde"], [b""]]


def test_drop_comes_before_the_other_faults() -> None:
    faults = armed({"fault": "drop", "count": 1}, {"fault": "duplicate", "count": 1})
    f0, f1, f2 = FRAMES[:3]
    assert run(faults, [f0, f1, f2]) == [[], [f1, f1], [f2]]


def test_stall_holds_frames_then_sends_the_backlog_in_order() -> None:
    faults = armed({"fault": "stall", "seconds": 5}, now=100.0)
    f0, f1, f2, f3 = FRAMES[:4]
    assert faults.process(f0, 100.0) == []
    assert faults.process(f1, 102.0) == []
    assert faults.process(f2, 104.999) == []
    assert faults.stalled == [f0, f1, f2]
    assert faults.process(f3, 105.0) == [f0, f1, f2, f3]
    assert faults.idle
    assert faults.process(f0, 106.0) == [f0]


def test_a_longer_stall_extends_a_shorter_one() -> None:
    faults = armed({"fault": "stall", "seconds": 10}, now=0.0)
    faults.arm(parse_fault({"fault": "stall", "stream": DEPTH, "seconds": 2}), 1.0)
    assert faults.stall_until == 10.0
    assert faults.process(FRAMES[0], 9.0) == []


def test_release_returns_what_is_held_and_leaves_the_stream_idle() -> None:
    faults = armed({"fault": "stall", "seconds": 5}, now=0.0)
    f0, f1, f2 = FRAMES[:3]
    faults.process(f0, 1.0)
    faults.process(f1, 2.0)
    assert faults.release() == [f0, f1]
    assert faults.release() == []

    reordered = armed({"fault": "reorder", "count": 1})
    assert reordered.process(f2, 0.0) == []
    assert reordered.release() == [f2]
    assert reordered.idle


# -- faults that send well-formed frames with false values, and junk frames ------------------

TRADE = "btcusdt@trade"
YEAR_S = 365 * 86_400


def trade_frame(trade_id: int, time_us: int, trades: int = 1) -> bytes:
    batch = TradeBatch(
        "BTCUSDT",
        time_us + 7,
        time_us,
        tuple(
            Trade("BTCUSDT", trade_id + i, 9_000_000_000_000, 1_000_000, i % 2 == 0, time_us, 0)
            for i in range(trades)
        ),
    )
    return encode(batch)


def depth_frame(first_update_id: int, time_us: int) -> bytes:
    diff = DepthDiff(
        "BTCUSDT", time_us, first_update_id, first_update_id + 2, ((100, 5),), ((101, 0),)
    )
    return encode(diff)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {"fault": "time_shift", "stream": TRADE, "count": 2, "shift_s": YEAR_S},
            Fault(FaultKind.TIME_SHIFT, stream=TRADE, count=2, shift_us=YEAR_S * 1_000_000),
        ),
        (
            {"fault": "time_shift", "stream": DEPTH, "shift_s": -0.5},
            Fault(FaultKind.TIME_SHIFT, stream=DEPTH, shift_us=-500_000),
        ),
        (
            {"fault": "id_jump", "stream": TRADE, "count": 1, "jump": 10**12},
            Fault(FaultKind.ID_JUMP, stream=TRADE, jump=10**12),
        ),
        (
            {"fault": "garbage", "stream": DEPTH, "count": 3, "seed": 9},
            Fault(FaultKind.GARBAGE, stream=DEPTH, count=3, seed=9),
        ),
        ({"fault": "garbage", "stream": DEPTH}, Fault(FaultKind.GARBAGE, stream=DEPTH)),
    ],
)
def test_parse_fault_accepts_the_lying_and_junk_frame_faults(
    spec: dict[str, Any], expected: Fault
) -> None:
    assert parse_fault(spec) == expected


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ({"fault": "time_shift", "stream": TRADE}, "'shift_s'"),
        ({"fault": "time_shift", "stream": TRADE, "shift_s": 0}, "'shift_s'"),
        ({"fault": "time_shift", "stream": TRADE, "shift_s": "1y"}, "'shift_s'"),
        ({"fault": "time_shift", "stream": TRADE, "shift_s": 1e12}, "'shift_s'"),
        ({"fault": "time_shift", "shift_s": 5}, "'stream'"),
        ({"fault": "id_jump", "stream": TRADE}, "'jump'"),
        ({"fault": "id_jump", "stream": TRADE, "jump": 0}, "'jump'"),
        ({"fault": "id_jump", "stream": TRADE, "jump": 1.5}, "'jump'"),
        ({"fault": "id_jump", "stream": TRADE, "jump": True}, "'jump'"),
        ({"fault": "id_jump", "stream": TRADE, "jump": 2**60}, "'jump'"),
        ({"fault": "id_jump", "stream": DEPTH, "jump": 5}, "'stream'"),
        ({"fault": "garbage", "stream": DEPTH, "seed": -1}, "'seed'"),
        ({"fault": "garbage", "stream": DEPTH, "count": 0}, "'count'"),
    ],
)
def test_parse_fault_rejects_bad_lying_and_junk_frame_specs(
    spec: dict[str, Any], named: str
) -> None:
    with pytest.raises(FaultSpecError) as raised:
        parse_fault(spec)
    assert named in str(raised.value)


def test_time_shift_moves_the_times_of_the_next_count_frames_only() -> None:
    faults = armed({"fault": "time_shift", "stream": TRADE, "count": 2, "shift_s": YEAR_S})
    sent = [faults.process(trade_frame(100 + i, 1_000_000 * (i + 1)), 0.0) for i in range(4)]
    assert [len(out) for out in sent] == [1, 1, 1, 1]
    batches = [decode(out[0]) for out in sent]
    shift = YEAR_S * 1_000_000
    assert [b.transact_time_us for b in batches] == [
        1_000_000 + shift,
        2_000_000 + shift,
        3_000_000,
        4_000_000,
    ]
    assert [b.event_time_us - b.transact_time_us for b in batches] == [7, 7, 7, 7]
    # Only the times lie: ids, prices and sizes are the trade's own.
    assert [b.trades[0].trade_id for b in batches] == [100, 101, 102, 103]
    assert batches[0].trades[0].price_e8 == 9_000_000_000_000
    assert faults.idle


def test_time_shift_moves_a_depth_diffs_event_time_into_the_past() -> None:
    faults = armed({"fault": "time_shift", "count": 1, "shift_s": -YEAR_S})
    shifted, plain = (faults.process(depth_frame(50 + 3 * i, 5_000_000), 0.0) for i in range(2))
    diff = decode(shifted[0])
    assert diff.event_time_us == 5_000_000 - YEAR_S * 1_000_000
    assert (diff.first_update_id, diff.last_update_id, diff.bids) == (50, 52, ((100, 5),))
    assert decode(plain[0]).event_time_us == 5_000_000


def test_id_jump_moves_every_trade_id_of_the_next_count_frames() -> None:
    faults = armed({"fault": "id_jump", "stream": TRADE, "count": 1, "jump": 10**12})
    jumped = decode(faults.process(trade_frame(100, 1_000_000, trades=3), 0.0)[0])
    after = decode(faults.process(trade_frame(103, 2_000_000), 0.0)[0])
    assert [t.trade_id for t in jumped.trades] == [10**12 + 100, 10**12 + 101, 10**12 + 102]
    assert jumped.transact_time_us == 1_000_000
    assert [t.trade_id for t in after.trades] == [103]
    assert faults.idle


def test_garbage_sends_a_random_frame_before_each_of_the_next_count_frames() -> None:
    faults = armed({"fault": "garbage", "count": 2, "seed": 4})
    frames = [depth_frame(10 + 3 * i, 1_000_000 * i) for i in range(3)]
    sent = [faults.process(frame, 0.0) for frame in frames]
    assert [len(out) for out in sent] == [2, 2, 1]
    for (junk, real), frame in zip(sent[:2], frames, strict=False):
        assert real == frame
        assert len(junk) == len(frame)
        with pytest.raises(SbeDecodeError):
            decode(junk)
    assert sent[2] == [frames[2]]
    assert sent[0][0] != sent[1][0]
    # The same seed sends the same junk: a run can be repeated byte for byte.
    again = armed({"fault": "garbage", "count": 1, "seed": 4})
    assert again.process(frames[0], 0.0)[0] == sent[0][0]
