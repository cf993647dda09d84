"""Reading a window back from closed segments: exact rows, pruned by day and footer."""

from __future__ import annotations

from pathlib import Path

import pytest

from btc_platform_tests.realtime.archive.events import DAY_START_US, US_PER_S, trades
from realtime.archive import schemas
from realtime.archive.capture import CaptureWriters
from realtime.archive.reader import find_segments, read_segments
from realtime.clock import VirtualClock

HOUR_US = 3600 * US_PER_S


@pytest.fixture
def two_days(tmp_path: Path) -> Path:
    """Trades every 10 s from 22:00 to 02:00 across a midnight, in 10-minute segments."""
    clock = VirtualClock((DAY_START_US - 2 * HOUR_US) / US_PER_S)
    writers = CaptureWriters(tmp_path, max_age_s=600, max_bytes=1 << 30, clock=clock)
    for i in range(4 * 360):
        time_us = DAY_START_US - 2 * HOUR_US + i * 10 * US_PER_S
        writers.append_events("trades", trades(i, 1, time_us))
        clock.advance(10)
        writers.flush()
    writers.close()
    return tmp_path


def test_the_window_s_rows_and_only_them_are_read(two_days):
    start, end = DAY_START_US - HOUR_US // 2, DAY_START_US + HOUR_US // 2
    rows = read_segments(two_days, "trades", start, end)
    assert rows.schema == schemas.TRADES_SCHEMA
    expected = list(range(540, 900))  # one trade every 10 s from 22:00
    assert rows["trade_id"].to_pylist() == expected


def test_only_segments_overlapping_the_window_are_opened(two_days):
    start, end = DAY_START_US + HOUR_US, DAY_START_US + HOUR_US + 15 * 60 * US_PER_S
    segments = find_segments(two_days, "trades", start, end)
    assert [s.path.parent.name for s in segments] == ["date=2026-01-01"] * 2
    for segment in segments:
        assert segment.min_ts_us < end
        assert segment.max_ts_us >= start
    assert sum(s.rows for s in segments) == 120  # two ten-minute segments


def test_partial_and_corrupt_files_are_never_read(two_days):
    (segment, *_) = find_segments(two_days, "trades", DAY_START_US, DAY_START_US + HOUR_US)
    copy = segment.path.read_bytes()
    segment.path.with_name(segment.path.name + ".partial").write_bytes(copy)
    segment.path.with_name("trades-1-0.parquet.corrupt").write_bytes(b"PAR1")
    rows = read_segments(two_days, "trades", DAY_START_US, DAY_START_US + HOUR_US)
    assert rows.num_rows == 360
    assert len(set(rows["trade_id"].to_pylist())) == 360


def test_a_window_without_segments_is_empty_with_the_schema(tmp_path):
    rows = read_segments(tmp_path, "depth", DAY_START_US, DAY_START_US + HOUR_US)
    assert rows.num_rows == 0
    assert rows.schema == schemas.DEPTH_SCHEMA
