"""``make demo``, shortened: the whole run through the same entry point, and Ctrl-C.

The demo is run as a user runs it, in a process of its own, against its own children:
the local exchange, a private redis-server and ``btc-realtime run``. Nothing is mocked;
the shortening is only less history (2 h) and a shorter live phase.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

dg = pytest.importorskip("dagster", reason="the batch extra is not installed")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads child processes from /proc"),
]

HISTORY_HOURS = "2"


def demo(data_dir: Path, live_seconds: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable, "-m", "btc_platform.demo",
            "--data-dir", str(data_dir),
            "--history-hours", HISTORY_HOURS,
            "--live-seconds", str(live_seconds),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "BTC_REDIS_URL": "redis://127.0.0.1:1/0"},  # must be ignored
    )  # fmt: skip


def children_of(pid: int) -> set[int]:
    """Every live process whose parent is ``pid`` (from /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.timeout(1800)  # the whole lake and the training first, on a shared machine
def test_the_shortened_demo_builds_the_lake_promotes_a_model_serves_it_and_leaves_nothing(
    tmp_path,
):
    data_dir = tmp_path / "demo"
    process = demo(data_dir, live_seconds=15)
    output, _ = process.communicate(timeout=1500)
    assert process.returncode == 0, output[-4000:]

    facts = json.loads((data_dir / "summary.json").read_text())
    # Every tick of the live phase is a prediction or a skip the service counted (a loaded
    # machine may make a tick miss its deadline; none may vanish), the predictions come
    # from the model Dagster promoted, and all but the first (before the first feature
    # vector) are served by it. A published prediction is inside the deadline by design.
    assert facts["predictions"] + facts["skipped_ticks"] >= 12, output[-4000:]
    assert facts["predictions"] >= 1, output[-4000:]
    levels = facts["fallback_levels"]
    served_by_model = levels.get("1", 0) + levels.get("2", 0)  # fresh, or a late vector
    assert served_by_model >= facts["predictions"] - 2, levels
    assert facts["model_versions_served"] == [facts["model_version"]]
    assert facts["latency_p99_ms"] <= 100
    assert facts["scored"] >= facts["predictions"] - 12  # the last 10 s have no label yet
    assert 0.0 <= facts["hit_rate"] <= 1.0
    assert facts["test_mae"] < facts["zero_mae"]  # the gate's promise, from the registry
    # Train == serve through the running service: each level-1 forecast equals the model's
    # forecast from the lake's features of the same second.
    assert facts["parity_checked"] >= facts["predictions"] - 12
    assert facts["parity_equal"] == facts["parity_checked"]

    # Every child the demo started is gone.
    assert sorted(facts["pids"]) == ["exchange", "realtime", "redis"]
    assert not [pid for pid in facts["pids"].values() if alive(pid)]

    # What `make ui` opens: the runs are on the demo's Dagster instance.
    instance = dg.DagsterInstance.from_config(str(data_dir / "dagster"))
    try:
        for path in (
            ["gold", "training_1s"],
            ["ml", "production_model"],
            ["bronze", "live_trades"],
        ):
            assert instance.get_latest_materialization_event(dg.AssetKey(path)) is not None, path
    finally:
        instance.dispose()

    for line in ("[6/6]", "Summary", "tick latency", "hit rate", "make ui"):
        assert line in output
    assert (data_dir / "models" / "BTCUSDT" / "current.json").exists()
    assert list((data_dir / "capture").rglob("*.parquet"))


# Reaching the live phase runs the whole lake and the training first: on a 2-core machine
# shared with other work that can take many minutes, so the budget is generous.
@pytest.mark.timeout(1800)
@pytest.mark.parametrize(
    ("phase", "marker", "expected"),
    [
        # Dagster runs on a worker thread, so its own SIGINT handling cannot swallow it.
        ("lake", "[3/6]", {"btc-sim", "redis-server"}),
        ("live", "tick (UTC)", {"btc-sim", "redis-server", "btc-realtime"}),
    ],
)
def test_ctrl_c_stops_every_process_the_demo_started(tmp_path, phase, marker, expected):
    process = demo(tmp_path / "demo", live_seconds=600)
    try:
        assert process.stdout is not None
        seen = []
        for line in process.stdout:
            seen.append(line)
            if marker in line:
                break
        assert any(marker in line for line in seen), "".join(seen)[-4000:]
        time.sleep(2.0)  # into the phase: a Dagster run or the first predictions
        started = {pid: command(pid) for pid in children_of(process.pid)}
        assert expected <= set(started.values()), started

        process.send_signal(signal.SIGINT)
        stopping = []
        for line in process.stdout:
            stopping.append(line)
            if "Interrupted" in line:
                break
        # An impatient second Ctrl-C while the children are being stopped: it must not cut
        # the stopping short (nor orphan a child, nor change the exit status).
        process.send_signal(signal.SIGINT)
        tail, _ = process.communicate(timeout=300)
        rest = "".join(stopping) + tail
        assert process.returncode == 130, rest[-4000:]
        assert "Interrupted" in rest
        deadline = time.monotonic() + 60  # Dagster's log tailers notice their parent is gone
        while [pid for pid in started if alive(pid)] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [started[pid] for pid in started if alive(pid)]
    finally:
        # A failed test leaves nothing running: the demo's children follow it (PDEATHSIG).
        if process.poll() is None:
            process.kill()
            process.wait()


def command(pid: int) -> str:
    """The program a process runs: the script's name for Python, else the binary's.

    (redis-server rewrites its argv into one word, ``redis-server 127.0.0.1:PORT``.)"""
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    words = [Path(word.decode().split()[0]).name for word in argv if word.strip()]
    if words and words[0].startswith("python") and len(words) > 1:
        return words[1]
    return words[0] if words else ""
