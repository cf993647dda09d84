"""The demo's child processes: started in order, stopped in reverse, never left behind.

Each child runs in a session of its own, so the terminal's Ctrl-C reaches only the demo,
which then stops the children in order (the realtime service first, so it flushes its
capture while Redis and the exchange are still up). On Linux each child also asks the
kernel for SIGTERM when the demo dies, so even a killed demo leaves nothing running.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from realtime.stop_signals import StopRequest

STOP_TIMEOUT_S = 20.0
"""SIGTERM to SIGKILL: the realtime service bounds each shutdown step to 5 s."""
REDIS_INSTALL_HINT = (
    "redis-server is not on PATH. The demo starts a private Redis of its own; install it "
    "(Debian/Ubuntu: sudo apt install redis-server, macOS: brew install redis) and run again."
)
_PR_SET_PDEATHSIG = 1


class ChildFailed(RuntimeError):
    """A child exited or never became ready; the message ends with its log's tail."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the parent dies (Linux only)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM, then SIGKILL after ``timeout_s``; returns the exit status."""
        if self.running():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@dataclass
class Children:
    """The demo's children, stopped in reverse order of starting by ``stop_all``."""

    log_dir: Path
    started: list[Child] = field(default_factory=list)
    """Children not yet stopped, oldest first."""
    pids: dict[str, int] = field(default_factory=dict)
    """Every child ever started, by name (for the summary)."""

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        stdout: int | IO[bytes] | None = None,
    ) -> Child:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log if stdout is None else stdout,
                stderr=log,
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        child = Child(name, process, log_path)
        self.started.append(child)
        self.pids[name] = process.pid
        return child

    def stop(self, child: Child) -> int:
        """Stop one child now (before the others); its exit status."""
        self.started.remove(child)
        return child.stop()

    def stop_all(self) -> dict[str, int]:
        """Stop every child still running, newest first; their exit statuses by name."""
        statuses = {}
        while self.started:
            child = self.started.pop()
            statuses[child.name] = child.stop()
        return statuses


def wait_until(
    ready: Callable[[], bool],
    child: Child,
    stop: StopRequest,
    timeout_s: float,
    what: str,
    every_s: float = 0.1,
) -> None:
    """Poll ``ready`` until true; ``ChildFailed`` if the child exits or time runs out,
    ``Interrupted`` on a stop request."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        if not child.running():
            raise ChildFailed(f"{child.name} exited before {what}:\n{child.log_tail()}")
        if time.monotonic() > deadline:
            raise ChildFailed(
                f"{child.name}: no {what} after {timeout_s:.0f} s:\n{child.log_tail()}"
            )
        stop.sleep(every_s)


def start_redis(children: Children, stop: StopRequest, directory: Path) -> tuple[Child, str]:
    """A private redis-server on a free port, nothing persisted; returns it and its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise ChildFailed(REDIS_INSTALL_HINT)
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    child = children.start(
        "redis",
        [
            binary,
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(directory),
        ],
    )  # fmt: skip
    wait_until(lambda: _accepts(port), child, stop, 10.0, "Redis listening")
    return child, f"redis://127.0.0.1:{port}/0"


@dataclass(frozen=True)
class Exchange:
    child: Child
    rest_url: str
    stream_url: str
    history_end_us: int
    trades_in_history: int


def start_exchange(
    children: Children,
    stop: StopRequest,
    *,
    seed: int,
    signal_strength: float,
    start: str,
    history_s: float,
) -> Exchange:
    """``btc-sim serve`` on a free port; returns once it printed its URLs (history generated)."""
    argv = [
        *_console_script("btc-sim", "realtime.sim.cli"),
        "serve",
        "--seed", str(seed),
        "--signal", str(signal_strength),
        "--start", start,
        "--history", f"{history_s:.0f}s",
        "--speed", "1",
        "--port", "0",
        "--weight-limit", "off",
    ]  # fmt: skip
    children.log_dir.mkdir(parents=True, exist_ok=True)
    ready_path = children.log_dir / "exchange.json"
    with ready_path.open("wb") as ready:
        child = children.start("exchange", argv, stdout=ready)
    wait_until(lambda: ready_path.stat().st_size > 0, child, stop, 180.0, "market generated")
    announced = json.loads(ready_path.read_text().splitlines()[0])
    return Exchange(
        child,
        announced["rest"],
        announced["streams"],
        announced["history_end_us"],
        announced["trades_in_history"],
    )


def start_realtime(children: Children, env: dict[str, str], metrics_port: int) -> Child:
    """``btc-realtime run`` (every role) with the given ``BTC_*`` settings."""
    argv = [
        *_console_script("btc-realtime", "realtime.cli"),
        "run",
        "--metrics-port",
        str(metrics_port),
    ]
    return children.start("realtime", argv, env={**os.environ, **env})


def _console_script(name: str, module: str) -> list[str]:
    """The venv's console script, or the module under this interpreter if not installed."""
    script = Path(sys.executable).with_name(name)
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", f"import sys; from {module} import main; sys.exit(main())"]


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False
