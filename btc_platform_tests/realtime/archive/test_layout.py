"""Segment names and day directories."""

from pathlib import Path

from realtime.archive.layout import SegmentName, day_dir, day_number, parse_name


def test_a_closed_segment_name_round_trips_even_with_underscores_in_the_kind():
    name = SegmentName("best_bid_ask", 1_767_225_600_123_456, 7)
    assert parse_name(Path(f"/x/{name.stem()}.parquet")) == name


def test_partial_corrupt_and_foreign_files_are_not_segments():
    for file in (
        "trades-1-0.parquet.partial",
        "trades-1-0.parquet.corrupt",
        "trades-x-0.parquet",
        "-1-0.parquet",
        "notes.txt",
    ):
        assert parse_name(Path(file)) is None, file


def test_the_day_directory_is_the_utc_date_of_the_time():
    last_us_of_2025 = 1_767_225_600_000_000 - 1
    assert day_dir(Path("c"), "trades", day_number(last_us_of_2025)) == Path(
        "c/trades/date=2025-12-31"
    )
    assert day_dir(Path("c"), "trades", day_number(last_us_of_2025 + 1)) == Path(
        "c/trades/date=2026-01-01"
    )
