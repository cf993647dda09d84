"""The segment writer: rotation by size, age and midnight; append-only; crash leftovers.

Time is a ``VirtualClock``: rotation by age and by the wall clock's midnight is driven by
advancing it, never by sleeping.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from btc_platform_tests.realtime.archive.events import DAY_START_US, US_PER_S, trades
from realtime.archive import schemas
from realtime.archive.layout import PARTIAL
from realtime.archive.ownership import KindLock
from realtime.archive.reader import read_segments
from realtime.archive.rows import market_batch
from realtime.archive.segments import SegmentWriter
from realtime.clock import VirtualClock
from realtime.service.metrics import Metrics

PROJECT = Path(__file__).parents[3]


def _writer(directory: Path, clock: VirtualClock, closed: list, **options) -> SegmentWriter:
    settings = {"max_age_s": 300.0, "max_bytes": 64 << 20, **options}
    return SegmentWriter(
        directory,
        "trades",
        schemas.TRADES_SCHEMA,
        clock=clock,
        on_segment_closed=lambda kind, path, rows: closed.append((kind, path, rows)),
        **settings,
    )


def _batch(first_id: int, count: int, start_us: int, step_us: int = 100_000):
    events = trades(first_id, count, start_us, step_us)
    return market_batch("trades", events, source="sbe", ingest_ts_us=start_us)


def _files(directory: Path, pattern: str = "*.parquet") -> list[Path]:
    return sorted(directory.rglob(pattern))


def _ids(path: Path) -> list[int]:
    return pq.read_table(path)["trade_id"].to_pylist()


def test_a_segment_rotates_once_it_has_written_max_bytes(tmp_path):
    clock, closed = VirtualClock(DAY_START_US / US_PER_S), []
    writer = _writer(tmp_path, clock, closed, max_bytes=1, row_group_rows=10)
    for block in range(3):
        writer.append(_batch(block * 10, 10, DAY_START_US + block * US_PER_S))
    assert [rows for _, _, rows in closed] == [10, 10, 10]
    assert [_ids(path) for _, path, _ in closed] == [
        list(range(0, 10)),
        list(range(10, 20)),
        list(range(20, 30)),
    ]
    assert _files(tmp_path, f"*{PARTIAL}") == []


def test_a_segment_rotates_after_max_age_and_rows_buffered_meanwhile_are_kept(tmp_path):
    clock, closed = VirtualClock(DAY_START_US / US_PER_S), []
    writer = _writer(tmp_path, clock, closed, max_age_s=60.0)
    writer.append(_batch(0, 5, DAY_START_US))
    clock.advance(59.9)
    writer.append(_batch(5, 5, DAY_START_US + 59 * US_PER_S))
    writer.flush()
    assert closed == []
    clock.advance(0.1)
    writer.flush()
    assert [(kind, rows) for kind, _, rows in closed] == [("trades", 10)]
    assert _ids(closed[0][1]) == list(range(10))
    writer.append(_batch(10, 5, DAY_START_US + 61 * US_PER_S))
    writer.close()
    assert [_ids(path) for _, path, _ in closed] == [list(range(10)), list(range(10, 15))]
    assert closed[1][1].name == f"trades-{DAY_START_US + 61 * US_PER_S + 250}-1.parquet"


def test_rows_straddling_midnight_land_in_one_segment_per_day(tmp_path):
    clock, closed = VirtualClock(DAY_START_US / US_PER_S), []
    writer = _writer(tmp_path, clock, closed)
    writer.append(_batch(0, 20, DAY_START_US - US_PER_S))  # 23:59:59.0 to 00:00:00.9
    writer.close()
    (before, after) = sorted(path for _, path, _ in closed)
    assert before.parent.name == "date=2025-12-31"
    assert after.parent.name == "date=2026-01-01"
    assert _ids(before) == list(range(10))
    assert _ids(after) == list(range(10, 20))


def test_the_wall_clock_passing_midnight_closes_the_day_s_segment_without_new_rows(tmp_path):
    clock, closed = VirtualClock(DAY_START_US / US_PER_S - 10), []
    writer = _writer(tmp_path, clock, closed)
    writer.append(_batch(0, 5, DAY_START_US - 5 * US_PER_S))
    clock.advance(9.0)
    writer.flush()
    assert closed == []
    clock.advance(1.0)  # 00:00:00 UTC
    writer.flush()
    assert [rows for _, _, rows in closed] == [5]
    assert closed[0][1].parent.name == "date=2025-12-31"


def test_closed_segments_never_change_and_open_ones_are_not_read(tmp_path):
    clock, closed = VirtualClock(DAY_START_US / US_PER_S), []
    writer = _writer(tmp_path, clock, closed, max_age_s=10.0)
    writer.append(_batch(0, 10, DAY_START_US))
    clock.advance(10.0)
    writer.flush()
    (first,) = _files(tmp_path)
    digest, stat = hashlib.sha256(first.read_bytes()).hexdigest(), first.stat()

    writer.append(_batch(10, 10, DAY_START_US + 10 * US_PER_S))
    writer.append(_batch(20, 10, DAY_START_US + 11 * US_PER_S))
    window = (DAY_START_US, DAY_START_US + 3600 * US_PER_S)
    assert read_segments(tmp_path, "trades", *window)["trade_id"].to_pylist() == list(range(10))
    writer.close()

    assert hashlib.sha256(first.read_bytes()).hexdigest() == digest
    assert (first.stat().st_mtime_ns, first.stat().st_size) == (stat.st_mtime_ns, stat.st_size)
    assert len(_files(tmp_path)) == 2
    assert read_segments(tmp_path, "trades", *window)["trade_id"].to_pylist() == list(range(30))


def test_a_restarted_writer_never_reuses_a_segment_name(tmp_path):
    clock, closed = VirtualClock(DAY_START_US / US_PER_S), []
    for _ in range(2):
        writer = _writer(tmp_path, clock, closed)
        writer.append(_batch(0, 3, DAY_START_US))
        writer.close()
    assert len({path for _, path, _ in closed}) == 2
    assert len(_files(tmp_path)) == 2


def test_rows_of_another_schema_are_refused(tmp_path):
    writer = _writer(tmp_path, VirtualClock(), [])
    quotes = market_batch("best_bid_ask", [], source="sbe", ingest_ts_us=0)
    with pytest.raises(ValueError, match="segment schema"):
        writer.append(quotes)


def test_a_partial_with_its_footer_is_finalised_on_start(tmp_path):
    clock, closed = VirtualClock(DAY_START_US / US_PER_S), []
    writer = _writer(tmp_path, clock, closed)
    writer.append(_batch(0, 4, DAY_START_US))
    writer.close()
    (path,) = _files(tmp_path)
    # The crash came after the footer was written, before the rename.
    partial = path.with_name(path.name + ".partial")
    path.rename(partial)

    restarted = _writer(tmp_path, clock, closed)
    assert restarted.recovery.finalized == (path,)
    assert restarted.recovery.corrupt == ()
    assert closed[-1] == ("trades", path, 4)
    assert _ids(path) == [0, 1, 2, 3]


def test_a_partial_cut_by_a_crash_is_moved_aside_and_counted(tmp_path):
    # A real crash: a process writes row groups to an open segment and dies without
    # closing it, so the file has data but no footer.
    script = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        from btc_platform_tests.realtime.archive.events import trades
        from realtime.archive import schemas
        from realtime.archive.rows import market_batch
        from realtime.archive.segments import SegmentWriter
        from realtime.clock import VirtualClock
        writer = SegmentWriter(
            Path({str(tmp_path)!r}), "trades", schemas.TRADES_SCHEMA,
            max_age_s=300, max_bytes=1 << 30, row_group_rows=10,
            clock=VirtualClock({DAY_START_US / US_PER_S}),
        )
        events = trades(0, 100, {DAY_START_US})
        writer.append(market_batch("trades", events, source="sbe", ingest_ts_us=0))
        os._exit(1)
        """
    )
    subprocess.run([sys.executable, "-c", script], cwd=PROJECT, check=False)
    (partial,) = _files(tmp_path, f"*{PARTIAL}")
    assert partial.stat().st_size > 0
    with pytest.raises(Exception, match=r"footer|magic"):
        pq.read_metadata(partial)

    writer = _writer(tmp_path, VirtualClock(DAY_START_US / US_PER_S), [])
    (corrupt,) = writer.recovery.corrupt
    assert writer.recovery.finalized == ()
    assert corrupt.name == partial.name.replace(".partial", ".corrupt")
    assert corrupt.exists()
    assert not partial.exists()
    window = (DAY_START_US, DAY_START_US + 3600 * US_PER_S)
    assert read_segments(tmp_path, "trades", *window).num_rows == 0


# -- a full disk ------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 256 KiB tmpfs (needs mount rights: root, or skipped; the RLIMIT_FSIZE test
    below runs everywhere)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _fill(directory: Path) -> Path:
    """A file that takes every free byte of ``directory``'s file system."""
    filler = directory / "filler"
    with pytest.raises(OSError, match="No space left"):
        filler.write_bytes(bytes(4 << 20))  # more than the whole disk
    return filler


def _sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_a_full_disk_holds_the_rows_and_writes_them_when_space_returns(small_disk):
    metrics, clock, closed = Metrics(), VirtualClock(DAY_START_US / US_PER_S), []
    writer = _writer(small_disk, clock, closed, row_group_rows=100, metrics=metrics)
    writer.append(_batch(0, 150, DAY_START_US))  # one row group on disk, 50 rows buffered
    filler = _fill(small_disk)

    for block in range(1, 20):  # every write fails now, opens and row groups alike
        writer.append(_batch(block * 150, 150, DAY_START_US + block * 15 * US_PER_S))
        clock.advance(1.0)
        writer.flush()
    assert _sample(metrics, "btc_capture_write_errors_total", kind="trades", errno="ENOSPC") >= 1
    assert _sample(metrics, "btc_queue_depth", queue="capture-trades") > 0

    filler.unlink()
    clock.advance(60.0)  # past any retry backoff
    writer.flush()
    writer.close()

    window = (DAY_START_US, DAY_START_US + 3600 * US_PER_S)
    assert read_segments(small_disk, "trades", *window)["trade_id"].to_pylist() == list(
        range(20 * 150)
    )
    assert _files(small_disk, f"*{PARTIAL}") == []
    assert _files(small_disk, "*.corrupt") == []
    assert _sample(metrics, "btc_queue_dropped_total", queue="capture-trades") == 0
    assert _sample(metrics, "btc_queue_depth", queue="capture-trades") == 0


def test_rows_held_beyond_the_bound_drop_the_oldest_and_are_counted(small_disk):
    metrics, clock, closed = Metrics(), VirtualClock(DAY_START_US / US_PER_S), []
    one_batch = _batch(0, 100, DAY_START_US).nbytes
    writer = _writer(
        small_disk,
        clock,
        closed,
        row_group_rows=100,
        metrics=metrics,
        max_held_bytes=5 * one_batch,
    )
    filler = _fill(small_disk)
    for block in range(12):
        writer.append(_batch(block * 100, 100, DAY_START_US + block * 10 * US_PER_S))
    dropped = _sample(metrics, "btc_queue_dropped_total", queue="capture-trades")
    assert dropped > 0

    filler.unlink()
    clock.advance(60.0)
    writer.close()
    ids = read_segments(small_disk, "trades", DAY_START_US, DAY_START_US + 3600 * US_PER_S)[
        "trade_id"
    ].to_pylist()
    assert len(ids) + dropped == 1200  # every row is written or counted as dropped
    assert ids == sorted(ids)
    assert ids[-100:] == list(range(1100, 1200))  # the newest are kept
    assert 0 not in ids[100:]


def test_a_file_size_limit_fails_writes_and_the_writer_recovers_when_it_lifts(tmp_path):
    # A real kernel limit in a child process: RLIMIT_FSIZE turns writes beyond the limit
    # into EFBIG (SIGXFSZ ignored), and raising the soft limit again lets them through.
    script = textwrap.dedent(
        f"""
        import json, resource, signal
        from pathlib import Path
        from btc_platform_tests.realtime.archive.events import trades
        from realtime.archive import schemas
        from realtime.archive.rows import market_batch
        from realtime.archive.segments import SegmentWriter
        from realtime.clock import VirtualClock
        from realtime.service.metrics import Metrics
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        metrics, clock = Metrics(), VirtualClock({DAY_START_US / US_PER_S})
        writer = SegmentWriter(
            Path({str(tmp_path)!r}), "trades", schemas.TRADES_SCHEMA,
            max_age_s=3600, max_bytes=1 << 30, row_group_rows=200, clock=clock,
            metrics=metrics,
        )
        resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024, hard))
        for block in range(40):
            events = trades(block * 200, 200, {DAY_START_US} + block * 20_000_000)
            writer.append(market_batch("trades", events, source="sbe", ingest_ts_us=0))
            clock.advance(1.0)
            writer.flush()
        errors = metrics.registry.get_sample_value(
            "btc_capture_write_errors_total", {{"kind": "trades", "errno": "EFBIG"}}
        )
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        clock.advance(60.0)
        writer.close()
        print(json.dumps({{"errors": errors}}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1])["errors"] >= 1
    window = (DAY_START_US, DAY_START_US + 3600 * US_PER_S)
    ids = read_segments(tmp_path, "trades", *window)["trade_id"].to_pylist()
    assert ids == list(range(40 * 200))
    assert _files(tmp_path, f"*{PARTIAL}") == []


def test_a_segment_removed_under_the_writer_is_abandoned_counted_and_writing_goes_on(tmp_path):
    metrics, clock, closed = Metrics(), VirtualClock(DAY_START_US / US_PER_S), []
    writer = _writer(tmp_path, clock, closed, row_group_rows=10, metrics=metrics)
    writer.append(_batch(0, 25, DAY_START_US))
    (partial,) = _files(tmp_path, f"*{PARTIAL}")
    partial.unlink()  # what the recovery of a second writer did before kinds had owners

    writer.close()  # the rename fails: no FileNotFoundError out of it
    assert _sample(metrics, "btc_capture_write_errors_total", kind="trades", errno="ENOENT") == 1
    assert _sample(metrics, "btc_queue_dropped_total", queue="capture-trades") == 25
    clock.advance(60.0)
    writer.append(_batch(25, 5, DAY_START_US + 10 * US_PER_S))
    writer.close()
    window = (DAY_START_US, DAY_START_US + 3600 * US_PER_S)
    assert read_segments(tmp_path, "trades", *window)["trade_id"].to_pylist() == list(range(25, 30))
    assert _files(tmp_path, f"*{PARTIAL}") == []


def test_a_writer_whose_kind_was_taken_after_close_holds_its_rows_and_writes_them_later(tmp_path):
    # close() gives the kind up; another writer (here a second open file description of the
    # lock, as another process would hold) takes it before this one appends again.
    metrics, clock, closed = Metrics(), VirtualClock(DAY_START_US / US_PER_S), []
    writer = _writer(tmp_path, clock, closed, row_group_rows=10, metrics=metrics)
    writer.append(_batch(0, 10, DAY_START_US))
    writer.close()
    other = KindLock(tmp_path / "trades")
    other.acquire()

    writer.append(_batch(10, 10, DAY_START_US + 10 * US_PER_S))  # must not raise
    writer.append(_batch(20, 10, DAY_START_US + 20 * US_PER_S))
    assert _sample(metrics, "btc_capture_write_errors_total", kind="trades", errno="EBUSY") == 1
    assert writer.unwritten_rows == 20
    assert len(closed) == 1

    other.release()
    clock.advance(60.0)  # past the retry backoff
    writer.flush()
    writer.close()
    window = (DAY_START_US, DAY_START_US + 3600 * US_PER_S)
    assert read_segments(tmp_path, "trades", *window)["trade_id"].to_pylist() == list(range(30))
    assert writer.unwritten_rows == 0
