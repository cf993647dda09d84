"""Files of length-prefixed SBE frames: a uint32 little-endian length, then the frame, repeated.

The format ``btc-realtime sbe-decode --file`` reads; simple enough to write from any tool
(``struct.pack("<I", len(frame)) + frame``) when a live frame needs a closer look.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from typing import BinaryIO

_LENGTH = struct.Struct("<I")
MAX_FRAME_BYTES = 1 << 20
"""Far above any stream frame (a 20/20 depth snapshot is 682 bytes); a larger prefix is garbage."""


class FrameFileError(ValueError):
    """The file does not follow the length-prefixed layout (bad length, or cut inside a frame)."""


def write_frames(file: BinaryIO, frames: Iterable[bytes]) -> int:
    """Append frames to ``file``; return how many were written."""
    count = 0
    for frame in frames:
        file.write(_LENGTH.pack(len(frame)))
        file.write(frame)
        count += 1
    return count


def read_frames(file: BinaryIO) -> Iterator[bytes]:
    """Yield the frames of ``file`` in order; raise ``FrameFileError`` where the layout breaks."""
    index = 0
    while True:
        prefix = file.read(_LENGTH.size)
        if not prefix:
            return
        if len(prefix) < _LENGTH.size:
            raise FrameFileError(f"file ends inside the length prefix of frame {index}")
        (length,) = _LENGTH.unpack(prefix)
        if length > MAX_FRAME_BYTES:
            raise FrameFileError(
                f"frame {index} claims {length} bytes; not a length-prefixed frame file"
            )
        frame = file.read(length)
        if len(frame) < length:
            raise FrameFileError(f"file ends inside frame {index} ({len(frame)} of {length} bytes)")
        yield frame
        index += 1
