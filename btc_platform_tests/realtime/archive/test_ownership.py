"""Capture writers own their files: a second process never touches a live writer's segments.

Each test runs a real second process (a capture writer in a ``python -c`` script) that
appends rows, keeps its segment open until told to go on over stdin, then closes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from btc_platform_tests.realtime.archive.events import DAY_START_US, US_PER_S, predictions
from realtime.archive.capture import CaptureWriters
from realtime.archive.layout import CORRUPT, PARTIAL
from realtime.archive.ownership import CaptureInUse
from realtime.archive.reader import read_segments
from realtime.clock import VirtualClock
from realtime.service.runner import Service
from realtime.service.settings import RealtimeSettings

PROJECT = Path(__file__).parents[3]
DAY = (DAY_START_US, DAY_START_US + 86_400 * US_PER_S)

WRITER = """
import json, sys
from pathlib import Path
from btc_platform_tests.realtime.archive.events import trades
from realtime.archive.capture import CaptureWriters
from realtime.clock import VirtualClock
capture = CaptureWriters(
    Path({directory!r}), max_age_s=3600, max_bytes=1 << 30, row_group_rows=10,
    clock=VirtualClock({now_s}),
)
capture.append_events("trades", trades(0, 25, {start_us}))  # two row groups on disk
print("open", flush=True)
sys.stdin.readline()
capture.append_events("trades", trades(25, 5, {start_us} + 3_000_000))
capture.close()
print(json.dumps({{"recovered": len(capture.recovery["trades"].corrupt)}}), flush=True)
"""


def _start(script: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=PROJECT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "open", "the writer process did not start"
    return process


def _finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    """Let the writer process go on, then its exit code and last line."""
    out, _ = process.communicate("go\n", timeout=120)
    return process.returncode, out.strip()


def test_a_second_writer_of_a_kind_is_refused_and_the_live_one_keeps_its_segment(tmp_path):
    now_s = DAY_START_US / US_PER_S + 60
    first = _start(WRITER.format(directory=str(tmp_path), now_s=now_s, start_us=DAY_START_US))
    try:
        (partial,) = tmp_path.rglob(f"*{PARTIAL}")
        refused = None
        try:  # what a second service process with a capture did at its start
            CaptureWriters(tmp_path, max_age_s=3600, max_bytes=1 << 30, clock=VirtualClock(now_s))
        except Exception as error:  # the type is asserted below
            refused = error
        assert partial.exists()
        assert list(tmp_path.rglob(f"*{CORRUPT}")) == []
    finally:
        code, last = _finish(first)

    assert code == 0, "the live writer's rotation failed"
    assert json.loads(last) == {"recovered": 0}
    assert read_segments(tmp_path, "trades", *DAY)["trade_id"].to_pylist() == list(range(30))
    assert isinstance(refused, CaptureInUse)
    assert "trades" in str(refused)


def test_a_dead_writer_s_lock_is_released_and_its_partial_recovered(tmp_path):
    now_s = DAY_START_US / US_PER_S + 60
    first = _start(WRITER.format(directory=str(tmp_path), now_s=now_s, start_us=DAY_START_US))
    first.kill()  # no close, no cleanup: the kernel releases the lock
    first.wait(timeout=60)
    (partial,) = tmp_path.rglob(f"*{PARTIAL}")

    capture = CaptureWriters(tmp_path, max_age_s=3600, max_bytes=1 << 30, clock=VirtualClock(now_s))
    (corrupt,) = capture.recovery["trades"].corrupt  # no footer yet: moved aside, counted
    assert corrupt.name == partial.name.replace(PARTIAL, CORRUPT)
    capture.close()


def test_infer_and_archive_processes_capture_side_by_side(tmp_path):
    # The archive process as the service builds it, appending at the wall clock's time (its
    # midnight rotation would otherwise close the segment at once): enough trades for one
    # full row group on disk, so a live partial exists while the infer process starts.
    now_us = time.time_ns() // 1000
    archive = _start(
        f"""
        import json, sys
        from pathlib import Path
        from btc_platform_tests.realtime.archive.events import trades
        from realtime.service.runner import Service
        from realtime.service.settings import RealtimeSettings
        service = Service(RealtimeSettings(data_dir=Path({str(tmp_path)!r})), ("archive",))
        capture = service.capture
        capture.append_events("trades", trades(0, 60_000, {now_us}, step_us=1))
        print("open", flush=True)
        sys.stdin.readline()
        capture.close()
        print(json.dumps(sorted(capture.writers)), flush=True)
        """
    )
    try:
        assert list(tmp_path.rglob(f"*{PARTIAL}")) != []
        infer = Service(RealtimeSettings(data_dir=tmp_path), ("infer",))
        assert infer.capture is not None
        assert sorted(infer.capture.writers) == ["predictions"]
        day_s = now_us // US_PER_S
        for prediction in predictions(3, day_s):
            infer.capture.append_prediction(prediction)
        infer.capture.close()
    finally:
        code, last = _finish(archive)

    assert code == 0
    assert json.loads(last) == ["best_bid_ask", "depth", "trades"]
    window = (now_us - 86_400 * US_PER_S, now_us + 86_400 * US_PER_S)
    assert read_segments(tmp_path / "capture", "trades", *window).num_rows == 60_000
    assert read_segments(tmp_path / "capture", "predictions", *window).num_rows == 3
    assert list(tmp_path.rglob(f"*{CORRUPT}")) == []


@pytest.mark.parametrize("roles", [("archive",), ("infer",), ("archive", "infer")])
def test_the_service_captures_the_kinds_of_its_roles_only(tmp_path, roles):
    service = Service(RealtimeSettings(data_dir=tmp_path), roles)
    assert service.capture is not None
    expected = {
        "archive": {"trades", "best_bid_ask", "depth"},
        "infer": {"predictions"},
    }
    assert set(service.capture.writers) == set().union(*(expected[role] for role in roles))
    service.capture.close()
