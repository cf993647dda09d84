"""The realtime service on its own thread and event loop, stopped and joined on exit.

The local exchange runs on another thread (``exchange_thread``), so the service talks to it
over real sockets exactly as it would to Binance. Tests read Redis, the capture directory
and ``/metrics`` from outside while it runs.
"""

from __future__ import annotations

import asyncio
import io
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from realtime.service.runner import ROLES, Service
from realtime.service.settings import RealtimeSettings


@contextmanager
def service_in_thread(
    settings: RealtimeSettings, roles: tuple[str, ...] = ROLES
) -> Iterator[Service]:
    service = Service(settings, roles)
    started = threading.Event()
    holder: dict[str, object] = {}

    async def run() -> None:
        stop = asyncio.Event()
        holder["loop"], holder["stop"] = asyncio.get_running_loop(), stop
        started.set()
        await service.run(stop)

    def main() -> None:
        try:
            asyncio.run(run())
        except BaseException as error:  # surfaced when the test leaves the block
            holder["error"] = error
        finally:
            started.set()

    thread = threading.Thread(target=main, name="realtime-service", daemon=True)
    thread.start()
    started.wait(timeout=30)
    deadline = time.monotonic() + 30
    while service.http.port == 0 and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)  # /metrics and /healthz listen once run() has started them
    try:
        yield service
    finally:
        if "loop" in holder:
            holder["loop"].call_soon_threadsafe(holder["stop"].set)  # type: ignore[attr-defined]
        thread.join(timeout=30)
        if thread.is_alive():
            raise AssertionError(f"the service did not stop within 30 s:\n{_tasks(holder)}")
        if "error" in holder:
            raise holder["error"]  # type: ignore[misc]


def _tasks(holder: dict[str, object]) -> str:
    """Where the tasks of a service that would not stop are (for the failure message)."""
    loop: asyncio.AbstractEventLoop = holder["loop"]  # type: ignore[assignment]
    out = io.StringIO()

    async def dump() -> None:
        for task in asyncio.all_tasks():
            out.write(f"task {task.get_name()}:\n")
            task.print_stack(limit=10, file=out)

    asyncio.run_coroutine_threadsafe(dump(), loop).result(timeout=10)
    return out.getvalue()
