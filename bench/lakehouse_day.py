"""A generated day through the lakehouse, and the REST backfill's use of the rate budget; JSON.

Two measurements against the local exchange, each on its own thread and event loop beside
the synchronous callers (as the lakehouse tests run it):

- ``day``: a generated day (``MarketModel`` at ``--activity`` times the calibrated rates)
  whose daily aggTrades archive is published, through the real Dagster assets with an
  ephemeral instance: bronze as one 24-hour range run (how ``BackfillPolicy`` batches a
  backfill), then silver.trades, silver.bars_1s, silver.features_1s and gold.training_1s
  for the day, one asset per ``materialize`` so that each stage's wall time includes its
  checks. Generating the day and building its archive file are set-up, reported apart.
- ``rest_budget``: hours of a day still running on an exchange that enforces Binance's
  6000 weight a minute, fetched the way the bronze asset does (``BinanceResource.fetcher``,
  the server's time, then ``AggTradeFetcher.fetch``) again and again for ``--rest-minutes``
  full calendar minutes; weight per minute as the server admitted it and as the client's
  ``RateBudget`` granted it, and every 429/418.

    python bench/lakehouse_day.py [--activity 2.0] [--seed 7] [--repeats 3]
                                  [--rest-hours 3] [--rest-minutes 2] [--smoke]

``--rest-minutes 0`` walks the hours once and reports no minutes (what ``--smoke`` does).
The result is written to bench/results/lakehouse_day.json too, except with ``--smoke``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import gc
import json
import math
import statistics
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import dagster as dg
from _machine import machine
from _smoke import parse_arguments

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' exchange helper


from btc_platform.definitions import build_definitions
from btc_platform.defs.constants import (
    BRONZE_AGG_TRADES,
    GOLD_TRAINING_1S,
    SILVER_BARS_1S,
    SILVER_FEATURES_1S,
    SILVER_TRADES,
)
from btc_platform.defs.resources import BinanceResource, LakehouseResource
from btc_platform.lakehouse.bronze_fetch import AggTradeFetcher
from btc_platform_tests.support.exchange_thread import serve_in_thread
from realtime.binance.archive import ArchiveFile
from realtime.binance.archive_csv import ArchiveKind
from realtime.sim.exchange import ExchangeConfig
from realtime.sim.market_model import MarketModel, MarketParams
from realtime.sim.request_limits import Admission

TARGET_DAY_S = 60.0
MIN_AGG_TRADES = 1_000_000
TARGET_UTILISATION = 0.90
WEIGHT_LIMIT_1M = 6000
US_PER_HOUR = 3_600_000_000
US_PER_DAY = 24 * US_PER_HOUR
HISTORY_PAST_END_S = 60
"""Market time played past the last hour needed, so that hour is complete on the exchange."""
RESULT = Path(__file__).parent / "results" / "lakehouse_day.json"

DAILY_STAGES = (
    ("silver.trades", SILVER_TRADES),
    ("silver.bars_1s", SILVER_BARS_1S),
    ("silver.features_1s", SILVER_FEATURES_1S),
    ("gold.training_1s", GOLD_TRAINING_1S),
)


def market_params(seed: int, activity: float, start_time_us: int) -> MarketParams:
    """The calibrated market with every base rate times ``activity``: the Hawkes intensities
    are linear in the base rates, so all activity (trades, book updates) scales with it."""
    calibrated = MarketParams(seed=seed, start_time_us=start_time_us)
    return replace(
        calibrated,
        taker_base_rate=calibrated.taker_base_rate * activity,
        maker_base_rate=calibrated.maker_base_rate * activity,
    )


# --- the day through bronze -> gold -------------------------------------------------------


def run_day(arguments: argparse.Namespace, day: dt.date, day_start_us: int) -> dict:
    params = market_params(arguments.seed, arguments.activity, day_start_us)
    config = ExchangeConfig(speed=0, history_s=86_400 + HISTORY_PAST_END_S, weight_limit=None)
    started = time.perf_counter()
    with serve_in_thread(MarketModel(params), config) as served:
        exchange = served.exchange
        generated_s = time.perf_counter() - started
        published = exchange.market.archive_days()
        # The simulator builds a day's archive on first request (Binance serves a static
        # file): build it now, so the fetch below times the download, not the simulator.
        archive = ArchiveFile.daily(ArchiveKind.AGG_TRADES, day, symbol=params.symbol)
        built_at = time.perf_counter()
        with urllib.request.urlopen(f"{exchange.archive_url}/{archive.path}.CHECKSUM") as reply:
            reply.read()
        archive_build_s = time.perf_counter() - built_at
        passes = []
        for _ in range(arguments.repeats):
            # A fresh lake, instance and download directory per pass: each pass is a first
            # load of the day, archive download included.
            with tempfile.TemporaryDirectory(prefix="lakehouse_day_") as data_dir:
                passes.append(materialize_day(exchange.rest_url, data_dir, day))
            # The resources' SQLite catalog connections are left to the garbage collector;
            # collected here, on the thread that opened them, sqlite3 accepts the close.
            gc.collect()
    totals = [sum(stage["wall_s"] for stage in one.values()) for one in passes]
    stages = {name: median_stage([one[name] for one in passes]) for name in passes[0]}
    checks = [check for stage in passes[0].values() for check in stage["check_list"]]
    all_checks = [c for one in passes for stage in one.values() for c in stage["check_list"]]
    total_s = statistics.median(totals)
    agg_trades = stages["bronze.agg_trades"]["rows"]
    return {
        "date": day.isoformat(),
        "activity": arguments.activity,
        "archive_published": day in published,
        "agg_trades": agg_trades,
        "at_least_1m_agg_trades": agg_trades >= MIN_AGG_TRADES,
        "generate_s": round(generated_s, 1),
        "archive_build_s": round(archive_build_s, 2),
        "passes": len(passes),
        "stages": stages,
        "total_s": round(total_s, 2),
        "total_s_passes": [round(total, 2) for total in totals],
        "target_s": TARGET_DAY_S,
        "meets_target": total_s <= TARGET_DAY_S,
        "slowest_stage": max(stages, key=lambda name: stages[name]["wall_s"]),
        "agg_trades_per_s": round(agg_trades / total_s),
        "rows": {name: stage["rows"] for name, stage in stages.items()},
        "checks_passed": all(check["passed"] for check in all_checks),
        "checks": checks,
    }


def median_stage(runs: list[dict]) -> dict:
    """One stage over the passes: median of its timings, its rows, its checks in every pass."""
    if len({run["rows"] for run in runs}) != 1:
        raise AssertionError(f"the passes wrote different row counts: {runs}")
    stage: dict = {
        "wall_s": round(statistics.median(run["wall_s"] for run in runs), 2),
        "wall_s_passes": [run["wall_s"] for run in runs],
    }
    for name in ("fetch_seconds", "write_seconds", "seconds"):
        if name in runs[0]:
            stage[name] = round(statistics.median(run[name] for run in runs), 3)
    for name in ("partitions", "rows", "source", "rest_requests"):
        if name in runs[0]:
            stage[name] = runs[0][name]
    stage["run_success"] = all(run["run_success"] for run in runs)
    stage["checks_passed"] = all(run["checks_passed"] for run in runs)
    return stage


def materialize_day(url: str, data_dir: str, day: dt.date) -> dict[str, dict]:
    defs = build_definitions(
        history_start=day,
        resources={
            "lakehouse": LakehouseResource(data_dir=data_dir),
            "binance": BinanceResource(rest_url=url, archive_url=url, data_dir=data_dir),
        },
    )
    assets, resources = list(defs.assets), dict(defs.resources)
    instance = dg.DagsterInstance.ephemeral()
    key = day.isoformat()
    runs = [
        (
            "bronze.agg_trades",
            BRONZE_AGG_TRADES,
            {
                "tags": {
                    "dagster/asset_partition_range_start": f"{key}-00:00",
                    "dagster/asset_partition_range_end": f"{key}-23:00",
                }
            },
        ),
        *((name, asset, {"partition_key": key}) for name, asset in DAILY_STAGES),
    ]
    stages: dict[str, dict] = {}
    for name, asset, partition in runs:
        started = time.perf_counter()
        # A failed blocking check fails the run; the stage is still timed and reported.
        result = dg.materialize(
            assets,
            resources=resources,
            instance=instance,
            selection=[asset],
            raise_on_error=False,
            **partition,
        )
        wall_s = time.perf_counter() - started
        stages[name] = stage_report(result, wall_s)
    return stages


def stage_report(result: dg.ExecuteInProcessResult, wall_s: float) -> dict:
    # A range run records one materialization per partition, all with the run's metadata.
    events = result.get_asset_materialization_events()
    metadata = {name: value.value for name, value in events[0].materialization.metadata.items()}
    report: dict = {"wall_s": round(wall_s, 2), "partitions": len(events), "rows": metadata["rows"]}
    for name in ("fetch_seconds", "write_seconds", "seconds", "source", "rest_requests"):
        if name in metadata:
            report[name] = metadata[name]
    evaluations = result.get_asset_check_evaluations()
    report["check_list"] = [
        {
            "asset": ".".join(evaluation.asset_key.path),
            "check": evaluation.check_name,
            "passed": evaluation.passed,
            **({} if evaluation.passed else {"description": evaluation.description}),
        }
        for evaluation in evaluations
    ]
    report["run_success"] = result.success
    report["checks_passed"] = all(evaluation.passed for evaluation in evaluations)
    return report


# --- the REST backfill against the weight limit -------------------------------------------


def run_rest_budget(arguments: argparse.Namespace, day_start_us: int) -> dict:
    """Hours of the next day, still running on the exchange, re-fetched over REST."""
    running_day_us = day_start_us + US_PER_DAY
    params = market_params(arguments.seed, arguments.activity, running_day_us)
    hours = arguments.rest_hours
    config = ExchangeConfig(
        speed=0, history_s=hours * 3600 + HISTORY_PAST_END_S, weight_limit=WEIGHT_LIMIT_1M
    )
    started = time.perf_counter()
    with serve_in_thread(MarketModel(params), config) as served:
        exchange = served.exchange
        generated_s = time.perf_counter() - started
        admitted: list[tuple[float, int, int]] = []
        limiter = exchange.limiter
        admit = limiter.admit

        def counted_admit(ip: str, weight: int) -> Admission:
            at = limiter.clock.time()
            admission = admit(ip, weight)
            admitted.append((at, weight, admission.status))
            return admission

        limiter.admit = counted_admit  # type: ignore[method-assign]
        with tempfile.TemporaryDirectory(prefix="lakehouse_rest_") as data_dir:
            binance = BinanceResource(
                rest_url=exchange.rest_url,
                archive_url=exchange.archive_url,
                weight_limit_1m=WEIGHT_LIMIT_1M,
                data_dir=data_dir,
            )
            backfill = asyncio.run(
                rest_backfill(binance, params.symbol, running_day_us, hours, arguments)
            )
    minutes = minute_report(backfill.pop("granted"), admitted, backfill, arguments.rest_minutes)
    return {
        "weight_limit_1m": WEIGHT_LIMIT_1M,
        "generate_s": round(generated_s, 1),
        **backfill,
        **minutes,
    }


async def rest_backfill(
    binance: BinanceResource, symbol: str, start_us: int, hours: int, arguments: argparse.Namespace
) -> dict:
    budget = binance.budget()
    granted: list[tuple[float, int]] = []
    acquire = budget.acquire

    async def counted_acquire(weight: int) -> None:
        await acquire(weight)
        granted.append((budget.clock.time(), weight))

    budget.acquire = counted_acquire  # type: ignore[method-assign]
    end_us = start_us + hours * US_PER_HOUR
    walks: list[dict] = []

    async def walk(fetcher: AggTradeFetcher) -> None:
        # What the bronze asset's run does (the server's work per page does not depend on
        # which ids it pages through, so re-walking the same hours measures the same).
        now_us = await fetcher.rest.server_time_us()
        rows, report = await fetcher.fetch(
            start_us, end_us, now_us=now_us, ingest_ts_us=time.time_ns() // 1000
        )
        walks.append({"rows": rows.num_rows, "sources": report.sources, "gaps": len(report.gaps)})

    async def walk_once() -> None:
        async with binance.fetcher(symbol) as fetcher:
            await walk(fetcher)

    async def walk_again_and_again() -> None:
        async with binance.fetcher(symbol) as fetcher:
            while True:
                await walk(fetcher)

    began = time.time()
    first_full_minute = math.ceil(began / 60)
    if arguments.rest_minutes == 0:
        await walk_once()
    else:
        stop_at = (first_full_minute + arguments.rest_minutes) * 60 + 0.2
        with contextlib.suppress(TimeoutError):  # the run is stopped mid-walk on purpose
            await asyncio.wait_for(walk_again_and_again(), timeout=stop_at - time.time())
    return {
        "hours": hours,
        "agg_trades_per_walk": walks[0]["rows"] if walks else None,
        "complete_walks": len(walks),
        "walk_sources": sorted({walk["sources"] for walk in walks}),
        "gaps_seen": sum(walk["gaps"] for walk in walks),
        "effective_limit_1m": budget.effective_limit,
        "requests": budget.requests,
        "budget_waits": budget.waits,
        "budget_waited_s": round(budget.waited_s, 1),
        "run_s": round(time.time() - began, 1),
        "first_full_minute": first_full_minute,
        "granted": granted,
    }


def minute_report(
    granted: list[tuple[float, int]],
    admitted: list[tuple[float, int, int]],
    backfill: dict,
    full_minutes: int,
) -> dict:
    first = backfill.pop("first_full_minute")
    effective = backfill["effective_limit_1m"]
    client: dict[int, int] = defaultdict(int)
    grant_times: dict[int, list[float]] = defaultdict(list)
    for at, weight in granted:
        client[int(at // 60)] += weight
        grant_times[int(at // 60)].append(at)
    server: dict[int, int] = defaultdict(int)
    for at, weight, status in admitted:
        if status == 200:
            server[int(at // 60)] += weight
    minutes = []
    for minute in range(first, first + full_minutes):
        times = grant_times[minute]
        busy_s = times[-1] - times[0] if len(times) > 1 else 0.0
        minutes.append(
            {
                "minute_utc": dt.datetime.fromtimestamp(minute * 60, tz=dt.UTC).strftime("%H:%M"),
                "server_weight": server[minute],
                "client_weight": client[minute],
                "utilisation": round(server[minute] / WEIGHT_LIMIT_1M, 4),
                "of_effective_limit": round(server[minute] / effective, 4),
                "requests": len(times),
                # From the minute's first grant to its last: how long the client took to
                # spend the budget; the rest of the minute it waited for the next one.
                "busy_s": round(busy_s, 1),
                "requests_per_busy_s": round(len(times) / busy_s, 1) if busy_s else None,
            }
        )
    refused = [status for _, _, status in admitted if status != 200]
    if not minutes:  # --rest-minutes 0: one walk, no full minute to report
        return {
            "full_minutes": [],
            "responses_429": refused.count(429),
            "responses_418": refused.count(418),
        }
    median = statistics.median(m["utilisation"] for m in minutes)
    busy_s = statistics.median(m["busy_s"] for m in minutes)
    return {
        "full_minutes": minutes,
        "median_utilisation": median,
        "median_of_effective_limit": statistics.median(m["of_effective_limit"] for m in minutes),
        "median_busy_s": busy_s,
        "client_speed_vs_budget": round(60 / busy_s, 1) if busy_s else None,
        "target_utilisation": TARGET_UTILISATION,
        "meets_target": median >= TARGET_UTILISATION,
        "responses_429": refused.count(429),
        "responses_418": refused.count(418),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--activity", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rest-hours", type=int, default=3)
    parser.add_argument("--rest-minutes", type=int, default=2)
    parser.add_argument("--skip-day", action="store_true")
    parser.add_argument("--skip-rest", action="store_true")
    arguments = parse_arguments(
        parser, {"activity": 0.02, "repeats": 1, "rest_hours": 1, "rest_minutes": 0}
    )

    started = time.perf_counter()
    day_start_us = MarketParams().start_time_us
    day = dt.datetime.fromtimestamp(day_start_us / 1e6, tz=dt.UTC).date()
    result: dict = {
        "benchmark": "lakehouse_day",
        "dagster": dg.__version__,
        "seed": arguments.seed,
        "smoke": arguments.smoke,
    }
    if not arguments.skip_day:
        result["day"] = run_day(arguments, day, day_start_us)
    if not arguments.skip_rest:
        result["rest_budget"] = run_rest_budget(arguments, day_start_us)
    result["wall_s"] = round(time.perf_counter() - started, 1)
    result["machine"] = machine()
    text = json.dumps(result, indent=2)
    if not arguments.smoke:
        RESULT.parent.mkdir(exist_ok=True)
        RESULT.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
