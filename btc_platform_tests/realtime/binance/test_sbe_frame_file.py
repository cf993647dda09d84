"""Length-prefixed frame files: round trip and the errors of a broken file."""

from __future__ import annotations

import io
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from realtime.binance.sbe.frame_file import FrameFileError, read_frames, write_frames


@given(st.lists(st.binary(max_size=700), max_size=20))
def test_write_then_read_is_the_identity(frames):
    buffer = io.BytesIO()
    assert write_frames(buffer, frames) == len(frames)
    buffer.seek(0)
    assert list(read_frames(buffer)) == frames


def test_cut_inside_a_prefix():
    with pytest.raises(FrameFileError, match="inside the length prefix of frame 0"):
        list(read_frames(io.BytesIO(b"\x05\x00")))


def test_absurd_length_is_not_taken_for_a_frame():
    with pytest.raises(FrameFileError, match="claims"):
        list(read_frames(io.BytesIO(struct.pack("<I", 2**31) + b"x")))
