"""A private ``redis-server`` process on a free port, for tests that need a real Redis."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

INSTALL_HINT = (
    "redis-server is not on PATH. The tests start their own private Redis; install it "
    "(Debian/Ubuntu: apt install redis-server, macOS: brew install redis) and run again."
)


def free_port() -> int:
    """A TCP port that was free a moment ago (the server start retries if it is taken meanwhile)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """Start ``redis-server`` on 127.0.0.1 with nothing persisted; stop it on ``stop()``.

    ``password`` turns on ``AUTH``; ``tls_dir`` (``ca.crt``, ``tls.crt``, ``tls.key``, as
    ``deploy/redis-tls.sh`` writes them) makes the port TLS only, as deployed.
    """

    def __init__(
        self,
        directory: Path,
        *,
        start_timeout_s: float = 60.0,
        attempts: int = 5,
        password: str | None = None,
        tls_dir: Path | None = None,
    ):
        self.directory = directory
        self.start_timeout_s = start_timeout_s
        self.attempts = attempts
        self.password = password
        self.tls_dir = tls_dir
        self.port: int | None = None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        scheme = "rediss" if self.tls_dir else "redis"
        return f"{scheme}://127.0.0.1:{self.port}/0"

    def _security_args(self) -> list[str]:
        arguments = ["--requirepass", self.password] if self.password else []
        if self.tls_dir:
            arguments += [
                "--port", "0",
                "--tls-port", str(self.port),
                "--tls-cert-file", str(self.tls_dir / "tls.crt"),
                "--tls-key-file", str(self.tls_dir / "tls.key"),
                "--tls-ca-cert-file", str(self.tls_dir / "ca.crt"),
                "--tls-auth-clients", "no",
            ]  # fmt: skip
        return arguments

    def restart(self, down_s: float = 0.0) -> None:
        """Stop the server and start a fresh, empty one on the same port (a crash and a
        restart as clients see it: connections drop, every key is gone)."""
        port = self.port
        self.stop()
        time.sleep(down_s)
        self.start(port=port)

    def start(self, port: int | None = None) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(INSTALL_HINT)
        self.directory.mkdir(parents=True, exist_ok=True)
        last_log = ""
        for _ in range(self.attempts):
            self.port = port or free_port()
            log_path = self.directory / f"redis-{self.port}.log"
            self.process = subprocess.Popen(
                [
                    binary,
                    "--port", str(self.port),
                    "--bind", "127.0.0.1",
                    "--save", "",
                    "--appendonly", "no",
                    "--dir", str(self.directory),
                    "--logfile", str(log_path),
                    *self._security_args(),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            if self._wait_until_ready():
                return self
            self.stop()
            last_log = log_path.read_text() if log_path.exists() else ""
        raise RuntimeError(
            f"redis-server did not start after {self.attempts} attempts:\n{last_log[-2000:]}"
        )

    def _wait_until_ready(self) -> bool:
        deadline = time.monotonic() + self.start_timeout_s
        security: dict[str, object] = {"password": self.password}
        if self.tls_dir:
            security |= {"ssl": True, "ssl_ca_certs": str(self.tls_dir / "ca.crt")}
        client = redis.Redis(
            host="127.0.0.1", port=self.port, socket_connect_timeout=2.0, **security
        )
        try:
            while time.monotonic() < deadline:
                if self.process is None or self.process.poll() is not None:
                    return False  # exited: most likely the port was taken between probe and bind
                try:
                    if client.ping():
                        return True
                except (redis.ConnectionError, redis.TimeoutError):  # not listening yet, or slow
                    time.sleep(0.02)
            return False
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@contextmanager
def paused_redis_server(directory: Path) -> Iterator[RedisServer]:
    """A private redis-server stopped with SIGSTOP: it accepts connections, answers nothing.

    The way to test that a client's timeouts hold (a dead port only tests refusals).
    """
    with RedisServer(directory) as server:
        os.kill(server.process.pid, signal.SIGSTOP)
        try:
            yield server
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
