"""The Great Expectations suites on a day of each lake table (86,400 rows); prints JSON.

Measures what an ``@asset_check`` pays: importing GX, creating the process's ephemeral
context, and ``validate_table`` per table (median of ``--repeats``, wall and CPU). The tables
are the quality tests' realistic ones (``btc_platform_tests/support/lake_tables.py``) for a
synthetic day at ``--trades-per-second``; ``silver.trades`` is cut to ``--rows`` rows too.

    python bench/quality_day.py [--rows 86400] [--repeats 5] [--trades-per-second 25] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from _machine import machine
from _smoke import parse_arguments

# The table builder is test support, not part of the installed package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from btc_platform_tests.support.lake_tables import market_tables


def timed(function, *args):
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=86_400)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--trades-per-second", type=float, default=25.0)
    arguments = parse_arguments(parser, {"rows": 600, "repeats": 1})

    started = time.perf_counter()
    import great_expectations as gx

    from btc_platform.quality import expectations

    import_s = time.perf_counter() - started
    _, context_s, _ = timed(lambda: gx.get_context(mode="ephemeral"))

    market = market_tables(arguments.rows, trades_per_second=arguments.trades_per_second)
    tables = {
        "silver.trades": market.trades.slice(0, arguments.rows),
        "silver.bars_1s": market.bars_1s,
        "silver.features_1s": market.features_1s,
        "gold.training_1s": market.training_1s,
    }
    results = {}
    first_call_s = None
    for name, table in tables.items():
        runs = [timed(expectations.validate_table, name, table) for _ in range(arguments.repeats)]
        if first_call_s is None:
            first_call_s = runs[0][1]  # includes creating the context, data source and asset
        report = runs[-1][0]
        results[name] = {
            "rows": table.num_rows,
            "expectations": report.evaluated,
            "passed": report.passed,
            "median_wall_s": round(statistics.median(run[1] for run in runs[1:] or runs), 3),
            "median_cpu_s": round(statistics.median(run[2] for run in runs[1:] or runs), 3),
        }
    print(
        json.dumps(
            {
                "benchmark": "quality_day",
                "import_gx_and_suites_s": round(import_s, 2),
                "ephemeral_context_s": round(context_s, 4),
                "first_validate_call_s": round(first_call_s, 3),
                "tables": results,
                "repeats": arguments.repeats,
                "great_expectations": gx.__version__,
                "smoke": arguments.smoke,
                "machine": machine(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
