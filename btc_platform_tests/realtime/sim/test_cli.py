"""``btc-sim``: argument parsing, ``serve`` as a real process, ``calibrate``."""

from __future__ import annotations

import argparse
import json
import math
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from btc_platform_tests.support.captures import CAPTURE_JSON as CAPTURE
from realtime.sim import cli


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90.0), ("30s", 30.0), ("15m", 900.0), ("6h", 21600.0), ("2d", 172800.0)],
)
def test_durations(text: str, seconds: float) -> None:
    assert cli.duration_s(text) == seconds


@pytest.mark.parametrize("text", ["", "6 hours", "-1h", "h"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        cli.duration_s(text)


def test_speeds() -> None:
    assert cli.speed("1") == 1.0
    assert cli.speed("12.5") == 12.5
    assert cli.speed("max") == math.inf
    assert cli.speed("0") == 0.0
    for bad in ("fast", "-2"):
        with pytest.raises(argparse.ArgumentTypeError):
            cli.speed(bad)


def test_start_times_are_utc() -> None:
    assert cli.start_time_us("2026-01-01T00:00:00Z") == 1_767_225_600_000_000
    with pytest.raises(argparse.ArgumentTypeError, match="UTC"):
        cli.start_time_us("2026-01-01T00:00:00")


def test_serve_prints_its_urls_and_serves_until_interrupted(tmp_path: Path) -> None:
    script = tmp_path / "faults.json"
    script.write_text(json.dumps([{"fault": "drop", "stream": "btcusdt@depth", "at_s": 1}]))
    command = [
        sys.executable,
        "-m",
        "realtime.sim.cli",
        "serve",
        "--seed=3",
        "--port=0",
        "--speed=0",
        "--history=2m",
        "--start=2026-01-01T00:00:00Z",
        f"--faults={script}",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        urls = json.loads(process.stdout.readline())
        with urllib.request.urlopen(f"{urls['rest']}/api/v3/ping", timeout=10) as response:
            assert json.loads(response.read()) == {}
        with urllib.request.urlopen(f"{urls['admin']}/status", timeout=10) as response:
            status = json.loads(response.read())
        assert status["history_end_us"] == 1_767_225_600_000_000 + 120_000_000
        assert status["trades"] == urls["trades_in_history"] > 100
        assert urls["streams"].startswith("ws://127.0.0.1:")
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0


def test_serve_refuses_a_bad_fault_script(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    script = tmp_path / "faults.json"
    script.write_text(json.dumps([{"fault": "drop"}]))
    assert cli.main(["serve", f"--faults={script}"]) == 2
    assert "stream" in capsys.readouterr().err


def test_calibrate_prints_the_side_by_side_table(capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["calibrate", f"--capture={CAPTURE}", "--minutes=2"]) == 0
    table = capsys.readouterr().out
    assert "| trades / s |" in table
    assert "real capture" in table
