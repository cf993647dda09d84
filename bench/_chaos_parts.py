"""The real parts the chaos bench runs and breaks: a private Redis, the local exchange and the
service, each its own process, and the capture disk.

Nothing here is a stand-in: ``redis-server`` is paused with SIGSTOP and restarted on its
port, the exchange is ``btc-sim serve`` faulted through its admin endpoint, the service is
``btc-realtime run`` watched through ``/healthz``, and the capture directory is a tmpfs of
its own that a filler file can make full.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import redis

SYMBOL = "BTCUSDT"
API_KEY = "chaos-bench"
REDIS_SOCKET_TIMEOUT_S = 2.0
"""The service's ``socket_timeout`` (``realtime.service.runner.redis_client``)."""


def free_port() -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _terminate(process: subprocess.Popen, timeout_s: float = 15.0) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


class RedisProcess:
    """A private ``redis-server`` on 127.0.0.1, nothing persisted; restartable on its port."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not on PATH (apt install redis-server)")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                # A service that floods Redis must not take the shared machine's memory;
                # past the cap the soonest-expiring keys (per-second vectors) go first.
                "--maxmemory", "1gb",
                "--maxmemory-policy", "volatile-ttl",
                "--dir", str(self.directory),
                "--logfile", str(self.directory / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 20
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"redis-server exited: {self.directory / 'redis.log'}")
                with contextlib.suppress(redis.ConnectionError):
                    if client.ping():
                        return
                time.sleep(0.05)
        finally:
            client.close()
        raise RuntimeError("redis-server did not answer within 20 s")

    def stop(self) -> None:
        if self.process is not None:
            self.resume()  # a stopped process cannot act on SIGTERM
            _terminate(self.process)
            self.process = None

    def restart(self, down_s: float) -> None:
        """A crash and a restart as clients see it: connections drop, every key is gone."""
        self.stop()
        time.sleep(down_s)
        self.start()

    def pause(self) -> None:
        """SIGSTOP: the socket stays open and nothing answers (a hung or swapping server)."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(
            self.url, socket_timeout=REDIS_SOCKET_TIMEOUT_S, socket_connect_timeout=1.0
        )


class ExchangeProcess:
    """``btc-sim serve`` on a free port, live at speed 1 from ``history_s`` of past."""

    def __init__(self, log_path: Path, *, history_s: int, seed: int) -> None:
        self.log_path = log_path
        self.history_s = history_s
        self.seed = seed
        self.process: subprocess.Popen | None = None
        self.url = ""

    def start(self) -> None:
        command = [
            sys.executable, "-m", "realtime.sim.cli", "serve",
            "--port", "0",
            "--history", f"{self.history_s}s",
            "--seed", str(self.seed),
            "--weight-limit", "off",
        ]  # fmt: skip
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=self._log, cwd=self.log_path.parent
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"btc-sim serve did not start: {self.log_path}")
        self.url = json.loads(line)["rest"]

    def stop(self) -> None:
        if self.process is not None:
            _terminate(self.process)
            self._log.close()

    @property
    def stream_url(self) -> str:
        return self.url.replace("http://", "ws://")

    def status(self) -> dict:
        with urllib.request.urlopen(f"{self.url}/admin/status", timeout=10) as reply:
            return json.loads(reply.read())

    def market_now_us(self) -> int:
        return int(self.status()["market_time_us"])

    def post_faults(self, faults: list[dict]) -> None:
        request = urllib.request.Request(
            f"{self.url}/admin/faults",
            data=json.dumps(faults).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as reply:
            if reply.status != 200:
                raise RuntimeError(f"fault refused: {reply.read()!r}")

    def clear_faults(self) -> None:
        request = urllib.request.Request(f"{self.url}/admin/faults", method="DELETE")
        with urllib.request.urlopen(request, timeout=10):
            pass


class ServiceProcess:
    """``btc-realtime run`` (every role in one process), configured by ``BTC_*`` variables."""

    def __init__(
        self,
        environment: dict[str, str],
        workdir: Path,
        metrics_port: int,
        *,
        preexec: Callable[[], None] | None = None,
    ) -> None:
        self.environment = environment
        self.workdir = workdir
        self.metrics_port = metrics_port
        self.preexec = preexec
        self.process: subprocess.Popen | None = None
        self.starts = 0
        self._log = None

    @property
    def log_path(self) -> Path:
        return self.workdir / f"service-{self.starts}.log"

    def start(self) -> None:
        self.starts += 1
        self._log = self.log_path.open("wb")
        command = [
            sys.executable, "-m", "realtime.cli", "run",
            "--metrics-port", str(self.metrics_port),
            "--log-level", "WARNING",
        ]  # fmt: skip
        # cwd is the run's own folder: nothing on the path can shadow the installed packages.
        self.process = subprocess.Popen(
            command,
            env={**os.environ, **self.environment},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            preexec_fn=self.preexec,
        )

    @property
    def capture_dir(self) -> Path:
        return Path(self.environment["BTC_DATA_DIR"]) / "capture"

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def health(self, timeout_s: float = 5.0) -> dict | None:
        """``/healthz`` as JSON (a 503 carries the same body); ``None`` when it did not answer."""
        url = f"http://127.0.0.1:{self.metrics_port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as reply:
                return json.loads(reply.read())
        except urllib.error.HTTPError as error:
            with contextlib.suppress(ValueError):
                return json.loads(error.read())
            return {"ready": False, "status": error.code}
        except (OSError, ValueError):
            return None

    def metrics_text(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=5) as reply:
                return reply.read().decode()
        except OSError:
            return ""

    def wait_ready(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.alive():
            health = self.health()
            if health is not None and health.get("ready"):
                return True
            time.sleep(0.5)
        return False

    def last_error(self) -> str:
        """The last traceback line of the current log (what ended a dead process)."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        errors = [line for line in lines if line and not line.startswith((" ", "\t"))]
        return errors[-1][:300] if errors else ""

    def stop(self) -> None:
        if self.process is not None:
            _terminate(self.process, timeout_s=30)
        if self._log is not None:
            self._log.close()


class CaptureDisk:
    """The capture directory on a small filesystem of its own, so it can be made full.

    A tmpfs when this process may mount one (root, or CAP_SYS_ADMIN); otherwise the folder
    stays on the host's disk and the full-disk fault cannot run (``kind`` says which).
    """

    def __init__(self, path: Path, size_mb: int) -> None:
        self.path = path
        self.size_mb = size_mb
        self.kind = "none"
        self.detail = ""
        self.filler = path / ".chaos-filler"

    def mount(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        mount = shutil.which("mount")
        if mount is None:
            self.detail = "no mount command"
            return
        result = subprocess.run(
            [mount, "-t", "tmpfs", "-o", f"size={self.size_mb}m", "tmpfs", str(self.path)],
            capture_output=True,
            text=True,
        )
        if result.returncode == 0:
            self.kind = f"tmpfs {self.size_mb} MiB"
        else:
            self.detail = f"mount -t tmpfs failed: {result.stderr.strip()[:200]}"

    def fill(self) -> int:
        """Write a filler until the filesystem refuses (ENOSPC); bytes written."""
        written = 0
        chunk = bytes(1 << 20)
        descriptor = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            while True:
                try:
                    written += os.write(descriptor, chunk)
                except OSError as error:
                    if error.errno != errno.ENOSPC:
                        raise
                    if len(chunk) == 1:
                        return written
                    chunk = bytes(len(chunk) // 2)
        finally:
            os.close(descriptor)

    def free(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.filler.unlink()

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.path).free

    def unmount(self) -> None:
        if self.kind.startswith("tmpfs"):
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True)
