"""What the silver and gold assets share: day-by-day windows and SQL model runs."""

import asyncio
import datetime as dt
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar

import dagster as dg
import pyarrow as pa
from dagster_duckdb import DuckDBResource
from pyiceberg.catalog import Catalog

from btc_platform.defs.partitions import US_PER_DAY, US_PER_SECOND, window_us
from btc_platform.lakehouse.tables import TableSpec, overwrite_window, scan_window
from dbt_like_sql import SqlProject

T = TypeVar("T")
DAYS_PER_RUN = 7
"""A backfill batches up to a week of days into one run (each day still written alone)."""


@cache
def sql_project() -> SqlProject:
    """The dbt_like_sql models, parsed and ordered once per process."""
    return SqlProject.load()


@dataclass(frozen=True)
class Day:
    """One UTC day as ``[start_us, end_us)``; assets write day by day, so a partition's
    rows never depend on which other days a backfill put in the same run."""

    start_us: int

    @property
    def end_us(self) -> int:
        return self.start_us + US_PER_DAY

    @property
    def start_sec(self) -> int:
        return self.start_us // US_PER_SECOND

    @property
    def end_sec(self) -> int:
        return self.end_us // US_PER_SECOND

    @property
    def key(self) -> str:
        return dt.datetime.fromtimestamp(self.start_sec, tz=dt.UTC).date().isoformat()


def days_of(context: dg.AssetExecutionContext) -> Iterator[Day]:
    """The days of the run's partition range."""
    start_us, end_us = window_us(context.partition_time_window)
    for day_start in range(start_us, end_us, US_PER_DAY):
        yield Day(day_start)


def rebuild_day(
    catalog: Catalog,
    day: Day,
    source: TableSpec,
    target: TableSpec,
    transform: Callable[[pa.Table], pa.Table],
    *,
    symbol: str,
) -> tuple[pa.Table, pa.Table]:
    """Read ``source``'s rows of ``symbol``'s ``day``, transform them, and replace ``target``'s
    day of ``symbol`` with the result in one snapshot; return (what was read, what was written).
    """
    rows_in = scan_window(catalog, source, day.start_us, day.end_us, symbol=symbol)
    rows_out = transform(rows_in)
    overwrite_window(catalog, target, rows_out, day.start_us, day.end_us, symbol=symbol)
    return rows_in, rows_out


def run_model(
    duckdb: DuckDBResource,
    model: str,
    relations: Mapping[str, pa.Table],
    variables: Mapping[str, int | float | str],
) -> pa.Table:
    """One SQL model over Arrow inputs, in a fresh DuckDB connection."""
    with duckdb.get_connection() as connection:
        return sql_project().run(connection, [model], relations, variables)[model]


def now_us() -> int:
    return time.time_ns() // 1000


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to completion from synchronous asset code.

    Runs usually own their process and have no event loop; but a run launched in process
    (the daemon's synchronous launcher, tests) may be called from inside one, where
    ``asyncio.run`` refuses, so there it gets a thread with its own loop.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="asset-loop") as pool:
        return pool.submit(asyncio.run, coroutine).result()
