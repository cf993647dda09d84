"""Capture writers own their files: one live writer per kind directory, held by an OS lock.

``<capture>/<kind>/.writer.lock`` is locked with ``flock`` (exclusive, without waiting) for
as long as a writer may have segments of that kind open. The kernel releases the lock when
the process ends, however it ends, so the next writer of the kind recovers a crashed
writer's ``.partial`` files, and never those of a writer still alive (in this process or
another). ``flock`` locks belong to an open file description: two writers of one kind in
one process exclude each other too.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

LOCK_NAME = ".writer.lock"


class CaptureInUse(RuntimeError):
    """Another live writer holds this kind's capture directory."""

    def __init__(self, kind_dir: Path, holder: str) -> None:
        super().__init__(
            f"capture directory {kind_dir} is written by another live writer ({holder}); "
            "one writer per kind: run each kind's role in one process only"
        )
        self.kind_dir = kind_dir


class KindLock:
    """The lock of one kind directory; ``acquire`` raises ``CaptureInUse`` if it is held."""

    def __init__(self, kind_dir: Path) -> None:
        self.kind_dir = Path(kind_dir)
        self.path = self.kind_dir / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        if self._fd is not None:
            return
        self.kind_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise CaptureInUse(self.kind_dir, holder) from None
        except BaseException:
            os.close(fd)
            raise
        # Who holds it, for the next one's error message; a full disk may refuse it.
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        os.close(fd)  # closing the only descriptor of the lock releases it


def _holder(fd: int) -> str:
    try:
        return os.pread(fd, 64, 0).decode(errors="replace").strip() or "pid unknown"
    except OSError:
        return "pid unknown"
