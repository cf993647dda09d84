"""SBE stream codec: worked examples, round trips, truncations and every typed error."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from btc_platform_tests.realtime.binance.sbe_strategies import (
    best_bid_asks,
    depth_diffs,
    depth_snapshots,
    messages,
    trade_batches,
)
from realtime.binance.sbe import (
    BlockTooShort,
    EncodeError,
    InsaneGroupCount,
    InvalidField,
    SbeDecodeError,
    SchemaMismatch,
    TrailingBytes,
    TruncatedFrame,
    UnknownTemplate,
    decode,
    encode,
    read_header,
    wire_exponents,
)
from realtime.market.events import BestBidAsk, DepthDiff, DepthSnapshot, Trade, TradeBatch

# SPEC 1.9: synthetic frames built from the schema, with the values the spec states.
DEPTH_DIFF_EXAMPLE = bytes.fromhex(
    "1a00132701000000"
    "4022224648470600"
    "01046bf414000000"
    "03046bf414000000"
    "fefb"
    "10000100"
    "3fb4960000000000"
    "f049020000000000"
    "10000100"
    "79b4960000000000"
    "0000000000000000"
    "0742544355534454"
)
TRADE_EXAMPLE = bytes.fromhex(
    "120010270100000020e127464847060038dd274648470600fefb1900010000007bbca065010000"
    "0046b4960000000000c409000000000000000742544355534454"
)

BTC_BBA = BestBidAsk(
    "BTCUSDT", 1767225600123456, 77_123_456_789, 9876543000000, 150000000, 9876544000000, 2000000
)


def test_depth_diff_worked_example_decodes_to_the_stated_values():
    assert len(DEPTH_DIFF_EXAMPLE) == 82
    assert decode(DEPTH_DIFF_EXAMPLE) == DepthDiff(
        symbol="BTCUSDT",
        event_time_us=1767225600123456,
        first_update_id=90000000001,
        last_update_id=90000000003,
        bids=((9876543 * 10**6, 150000 * 10**3),),  # 98765.43 x 1.50000
        asks=((9876601 * 10**6, 0),),  # 98766.01 removed
    )
    assert wire_exponents(DEPTH_DIFF_EXAMPLE, read_header(DEPTH_DIFF_EXAMPLE)) == (-2, -5)


def test_trade_worked_example_decodes_and_reencodes_byte_for_byte():
    assert len(TRADE_EXAMPLE) == 65
    batch = decode(TRADE_EXAMPLE)
    assert isinstance(batch, TradeBatch)
    (trade,) = batch.trades
    assert (trade.trade_id, trade.price_e8, trade.qty_e8, trade.is_buyer_maker) == (
        6000000123,
        9876550000000,  # 98765.50
        2500000,  # 0.02500
        False,
    )
    assert trade.transact_time_us == batch.transact_time_us
    assert trade.event_time_us == batch.event_time_us
    assert encode(batch, price_exponent=-2, qty_exponent=-5) == TRADE_EXAMPLE


@pytest.mark.parametrize(
    ("message", "header_hex", "size"),
    [
        (
            TradeBatch("BTCUSDT", 1, 2, (Trade("BTCUSDT", 3, 4, 5, True, 2, 1),)),
            "1200102701000000",
            65,
        ),
        (BTC_BBA, "3200112701000000", 66),
        (
            DepthSnapshot(
                "BTCUSDT", 1, 2, tuple((i, i) for i in range(20)), tuple((i, i) for i in range(20))
            ),
            "1200122701000000",
            682,
        ),
        (DepthDiff("BTCUSDT", 1, 2, 3, (), ()), "1a00132701000000", 8 + 26 + 4 + 4 + 8),
    ],
)
def test_frames_have_binance_headers_and_sizes(message, header_hex, size):
    frame = encode(message)
    assert frame[:8].hex() == header_hex
    assert len(frame) == size


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(messages)
def test_encode_then_decode_is_the_identity(message):
    assert decode(encode(message)) == message


@st.composite
def exponent_and_values(draw: st.DrawFn) -> tuple[int, list[int]]:
    """An exponent and e8 values that are exactly representable at it and fit an int64 there."""
    exponent = draw(st.integers(min_value=-12, max_value=4))
    step = 10 ** max(0, exponent + 8)
    bound = (2**63 - 1) // 10 ** max(0, -8 - exponent) // step
    values = draw(st.lists(st.integers(min_value=0, max_value=bound), min_size=4, max_size=4))
    return exponent, [value * step for value in values]


@settings(max_examples=200)
@given(exponent_and_values(), exponent_and_values())
def test_round_trip_at_any_wire_exponent(prices, quantities):
    price_exponent, (bid, ask, level_price, _) = prices
    qty_exponent, (bid_qty, ask_qty, level_qty, _) = quantities
    bba = BestBidAsk("BTCUSDT", 1, 2, bid, bid_qty, ask, ask_qty)
    diff = DepthDiff("BTCUSDT", 1, 2, 3, ((level_price, level_qty),), ((ask, 0),))
    for message in (bba, diff):
        frame = encode(message, price_exponent=price_exponent, qty_exponent=qty_exponent)
        assert wire_exponents(frame, read_header(frame)) == (price_exponent, qty_exponent)
        assert decode(frame) == message


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(messages)
def test_every_truncation_raises_truncated_frame(message):
    frame = encode(message)
    for length in range(len(frame)):
        with pytest.raises(TruncatedFrame):
            decode(frame[:length])


@settings(max_examples=100)
@given(messages, st.integers(min_value=1, max_value=40), st.integers(min_value=1, max_value=9))
def test_newer_version_with_longer_blocks_still_decodes(message, root_padding, entry_padding):
    frame = encode(message, version=3, root_padding=root_padding, entry_padding=entry_padding)
    assert read_header(frame).version == 3
    assert decode(frame) == message


@settings(max_examples=500)
@given(st.binary(max_size=120))
def test_arbitrary_bytes_never_escape_as_anything_but_a_decode_error(frame):
    with contextlib.suppress(SbeDecodeError):
        decode(frame)


@settings(max_examples=200)
@given(messages, st.data())
def test_single_byte_corruption_never_escapes_as_anything_but_a_decode_error(message, data):
    frame = bytearray(encode(message))
    position = data.draw(st.integers(min_value=0, max_value=len(frame) - 1))
    frame[position] = data.draw(st.integers(min_value=0, max_value=255))
    with contextlib.suppress(SbeDecodeError):
        decode(bytes(frame))


def test_wrong_schema_id_is_refused():
    frame = bytearray(encode(BTC_BBA))
    frame[4:6] = (3).to_bytes(2, "little")
    with pytest.raises(SchemaMismatch, match="schema id 3"):
        decode(bytes(frame))


def test_unknown_template_is_refused():
    frame = bytearray(encode(BTC_BBA))
    frame[2:4] = (10004).to_bytes(2, "little")
    with pytest.raises(UnknownTemplate, match="10004") as caught:
        decode(bytes(frame))
    assert caught.value.offset == 2


def test_trailing_bytes_are_refused():
    with pytest.raises(TrailingBytes, match="2 bytes after the symbol"):
        decode(encode(BTC_BBA) + b"\x00\x00")


def test_root_block_shorter_than_the_schema_is_refused():
    frame = bytearray(encode(BTC_BBA))
    frame[0:2] = (49).to_bytes(2, "little")
    with pytest.raises(BlockTooShort, match="49 bytes"):
        decode(bytes(frame))


def test_insane_trade_count_is_refused_before_reading_entries():
    frame = bytearray(TRADE_EXAMPLE)
    frame[28:32] = (2_000_000_000).to_bytes(4, "little")  # groupSizeEncoding numInGroup
    with pytest.raises(InsaneGroupCount, match="2000000000 trades"):
        decode(bytes(frame))


def test_insane_level_count_is_refused():
    frame = bytearray(DEPTH_DIFF_EXAMPLE)
    frame[36:38] = (60_000).to_bytes(2, "little")  # groupSize16Encoding numInGroup of bids
    with pytest.raises(InsaneGroupCount, match="60000 bids"):
        decode(bytes(frame))


def test_group_entry_shorter_than_the_schema_is_refused():
    frame = bytearray(DEPTH_DIFF_EXAMPLE)
    frame[34:36] = (15).to_bytes(2, "little")
    with pytest.raises(BlockTooShort, match="bids entries of 15 bytes"):
        decode(bytes(frame))


def test_boolean_outside_the_enum_is_refused():
    frame = bytearray(TRADE_EXAMPLE)
    frame[56] = 2  # isBuyerMaker of the first trade: 8 + 18 + 6 + 24
    with pytest.raises(InvalidField, match="isBuyerMaker = 2"):
        decode(bytes(frame))


def test_symbol_that_is_not_utf8_is_refused():
    frame = encode(BTC_BBA)[:-7] + b"\xff\xfeUSDT\x00"
    with pytest.raises(InvalidField, match="not UTF-8"):
        decode(frame)


def test_decimal_finer_than_e8_is_refused_not_rounded():
    frame = bytearray(encode(BTC_BBA._replace(bid_price_e8=9876543000001)))
    frame[8 + 16] = (-9) & 0xFF  # priceExponent -9: 9876543000001e-9 has a ninth decimal digit
    with pytest.raises(InvalidField, match="more than 8 decimal places"):
        decode(bytes(frame))


def test_encoding_a_value_the_exponent_cannot_hold_is_refused():
    assert decode(encode(BTC_BBA, price_exponent=-2)) == BTC_BBA  # 98765.43 fits two decimals
    with pytest.raises(EncodeError, match="not representable at exponent -2"):
        encode(BTC_BBA._replace(bid_price_e8=9876543100000), price_exponent=-2)  # 98765.431


def test_decode_accepts_bytearray_and_memoryview():
    frame = encode(BTC_BBA)
    assert decode(bytearray(frame)) == decode(memoryview(frame)) == BTC_BBA


def test_errors_carry_template_and_offset():
    with pytest.raises(TruncatedFrame) as caught:
        decode(DEPTH_DIFF_EXAMPLE[:60])
    assert caught.value.template_id == 10003
    assert "asks" in str(caught.value)


def test_decoder_uses_wire_strides_not_struct_sizes():
    # 24-byte depth entries (a future field appended), padding set to -1: levels must not shift.
    levels = ((100, 1), (200, 2), (300, 3))
    frame = bytearray(encode(DepthDiff("BTCUSDT", 1, 2, 3, levels, ()), entry_padding=8))
    for index in range(3):
        start = 8 + 26 + 4 + index * 24 + 16
        frame[start : start + 8] = struct.pack("<q", -1)
    assert decode(bytes(frame)).bids == levels


@pytest.mark.parametrize("strategy", [trade_batches(), best_bid_asks, depth_snapshots, depth_diffs])
def test_each_template_round_trips(strategy):
    @settings(max_examples=50)
    @given(strategy)
    def round_trip(message):
        assert decode(encode(message)) == message

    round_trip()
