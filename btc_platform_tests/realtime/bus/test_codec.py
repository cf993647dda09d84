"""Bus blocks round-trip every event exactly, in both encodings, and refuse damage."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from realtime.bus.codec import AVRO, CODECS, PACKED, MalformedBlock, decode_block, encode_block
from realtime.market.events import BestBidAsk, DepthDiff, DepthSnapshot, Trade

SYMBOL = "BTCUSDT"
ints = st.integers(min_value=0, max_value=2**62)
levels = st.lists(st.tuples(ints, ints), max_size=5).map(tuple)
events = st.one_of(
    st.builds(Trade, st.just(SYMBOL), ints, ints, ints, st.booleans(), ints, ints, st.booleans()),
    st.builds(BestBidAsk, st.just(SYMBOL), ints, ints, ints, ints, ints, ints),
    st.builds(DepthDiff, st.just(SYMBOL), ints, ints, ints, levels, levels),
    st.builds(DepthSnapshot, st.just(SYMBOL), st.none() | ints, ints, levels, levels),
)


@pytest.mark.parametrize("codec", CODECS)
@given(batch=st.lists(events, max_size=20))
def test_a_block_round_trips_every_event(codec, batch):
    fields = encode_block(batch, source="sbe", ingest_ts_us=7, codec=codec)
    assert decode_block(fields, SYMBOL) == batch


def _as_redis_returns(fields: dict) -> dict:
    """Redis hands every field back as bytes."""
    return {
        key: value if isinstance(value, bytes) else str(value).encode()
        for key, value in fields.items()
    }


@pytest.mark.parametrize("codec", CODECS)
def test_a_block_read_back_from_redis_decodes(codec):
    batch = [
        Trade(SYMBOL, 1, 2, 3, True, 4, 5),
        DepthDiff(SYMBOL, 1, 2, 3, ((10, 1),), ((11, 0),)),
    ]
    fields = _as_redis_returns(encode_block(batch, source="sbe", ingest_ts_us=7, codec=codec))
    assert decode_block(fields, SYMBOL) == batch


@pytest.mark.parametrize(
    ("damage", "codec"),
    [
        (lambda f: f | {b"a": f[b"a"][:-3]}, PACKED),  # cut
        (lambda f: f | {b"a": f[b"a"] + b"\x00"}, PACKED),  # trailing bytes
        (lambda f: f | {b"a": b"\x09" + f[b"a"][1:]}, PACKED),  # unknown event code
        (lambda f: f | {b"n": b"3"}, PACKED),  # more events announced than held
        (lambda f: f | {b"a": f[b"a"][:-3]}, AVRO),
        (lambda f: f | {b"c": b"zstd"}, PACKED),  # unknown codec
        (lambda f: {b"x": b"1"}, PACKED),  # not a block at all
    ],
)
def test_a_damaged_block_is_refused_with_a_typed_error(damage, codec):
    batch = [Trade(SYMBOL, 1, 2, 3, True, 4, 5), BestBidAsk(SYMBOL, 1, 2, 3, 4, 5, 6)]
    fields = _as_redis_returns(encode_block(batch, source="sbe", ingest_ts_us=7, codec=codec))
    with pytest.raises(MalformedBlock):
        decode_block(damage(fields), SYMBOL)
