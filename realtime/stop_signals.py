"""Ctrl-C and SIGTERM as a request that a program's own code acts on, never as an exception.

Python runs a signal handler on the main thread between two bytecodes, wherever that
thread is. If it is inside a garbage-collector or weakref callback, an exception the
handler raises (``KeyboardInterrupt``) is printed as "Exception ignored in ..." and
dropped: a handler that raises loses Ctrl-C at random. So the handlers here only record
(``StopRequest``) or set an ``asyncio.Event``, and the program's loops check and raise
``Interrupted`` themselves. Every program sets both signals itself: a process started in
the background by a shell inherits SIGINT ignored.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
POLL_S = 0.1
"""How often a wait looks at the request: the longest a stop waits to be noticed."""


class Interrupted(Exception):
    """A stop was requested by ``signum``; ``exit_status`` is 128 + signum, as a shell has it."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


class StopRequest:
    """The first SIGINT/SIGTERM received, recorded by the handler for the main thread's checks.

    The handler does no more than two attribute stores (no lock, no I/O): it may run inside
    any other code of the main thread, including a lock-holding ``threading.Event`` method.
    Later signals only count: whatever cleanup runs after the first cannot be cut short.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self.received = 0

    def install(self) -> StopRequest:
        """Make this the handler of SIGINT and SIGTERM (call on the main thread)."""
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._record)
        return self

    def _record(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum
        self.received += 1

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def check(self) -> None:
        """``Interrupted`` if a stop was requested."""
        if self.signum is not None:
            raise Interrupted(self.signum)

    def sleep(self, seconds: float) -> None:
        """Sleep ``seconds``, or ``Interrupted`` within ``POLL_S`` of a stop request."""
        deadline = time.monotonic() + seconds
        while True:
            self.check()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(min(POLL_S, remaining))

    def join(self, thread: threading.Thread) -> None:
        """Wait for ``thread`` to end, or ``Interrupted`` within ``POLL_S`` of a stop request
        (the thread runs on: the caller decides how long to wait for it after that)."""
        while thread.is_alive():
            self.check()
            thread.join(POLL_S)
        self.check()


def end_at_once() -> None:
    """SIGINT and SIGTERM end the process at once (the kernel's default action).

    For the start of a server, before its event loop's handlers take over: nothing is
    served yet, so there is nothing to stop cleanly, and no Python code can drop it."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)


def set_on_stop_signals(stop: asyncio.Event) -> None:
    """From now on SIGINT and SIGTERM set ``stop`` (call inside the running loop)."""
    loop = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop.set)
