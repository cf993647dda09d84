"""Time partitions: hourly for bronze, daily above, from the history's first day (UTC)."""

from __future__ import annotations

import datetime as dt
import os

import dagster as dg

DEFAULT_HISTORY_START = dt.date(2026, 1, 1)
HISTORY_START_VARIABLE = "BTC_HISTORY_START"
"""The one setting read when the definitions load: partitions are part of the asset graph."""

US_PER_SECOND = 1_000_000
US_PER_DAY = 86_400 * US_PER_SECOND


def history_start() -> dt.date:
    value = os.environ.get(HISTORY_START_VARIABLE)
    return dt.date.fromisoformat(value) if value else DEFAULT_HISTORY_START


def hourly(start: dt.date) -> dg.HourlyPartitionsDefinition:
    return dg.HourlyPartitionsDefinition(start_date=f"{start.isoformat()}-00:00", timezone="UTC")


def daily(start: dt.date) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(start_date=start.isoformat(), timezone="UTC")


def window_us(window: dg.TimeWindow) -> tuple[int, int]:
    """A partition time window as ``[start_us, end_us)``."""
    return (
        int(window.start.timestamp()) * US_PER_SECOND,
        int(window.end.timestamp()) * US_PER_SECOND,
    )
