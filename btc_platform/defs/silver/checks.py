"""The exact checks of silver.bars_1s (plain code; the expectation suites are in GX)."""

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from btc_platform.defs.constants import BARS_RECONCILE, SILVER_BARS_1S
from btc_platform.defs.layers import Day

BARS_RECONCILE_SPEC = dg.AssetCheckSpec(
    BARS_RECONCILE,
    asset=SILVER_BARS_1S,
    blocking=True,
    description=(
        "Exactly one bar per second of each day, and the bars account for every trade of "
        "silver.trades: same count of trades, same taker-buy and taker-sell quantities."
    ),
)


def reconcile_bars(bars: pa.Table, trades: pa.Table, days: list[Day]) -> dg.AssetCheckResult:
    """Compare the bars with the trades they were made from, exactly."""
    seconds = np.sort(bars["ts_sec"].to_numpy())
    expected = np.concatenate([np.arange(d.start_sec, d.end_sec) for d in days])
    grid_ok = np.array_equal(seconds, expected)
    counts = (
        pc.sum(pc.add(pc.subtract(trades["last_trade_id"], trades["first_trade_id"]), 1)).as_py()
        or 0
    )
    maker = trades["is_buyer_maker"]
    buy = pc.sum(pc.if_else(maker, 0, trades["qty_e8"])).as_py() or 0
    sell = pc.sum(pc.if_else(maker, trades["qty_e8"], 0)).as_py() or 0
    totals = {
        "trades": (pc.sum(bars["n_trades"]).as_py() or 0, counts),
        "buy_qty_e8": (pc.sum(bars["buy_qty_e8"]).as_py() or 0, buy),
        "sell_qty_e8": (pc.sum(bars["sell_qty_e8"]).as_py() or 0, sell),
    }
    mismatched = {name: pair for name, pair in totals.items() if pair[0] != pair[1]}
    passed = grid_ok and not mismatched
    problems = []
    if not grid_ok:
        problems.append(f"{len(seconds)} bars for {len(expected)} seconds")
    problems.extend(f"{name}: bars {a} != trades {b}" for name, (a, b) in mismatched.items())
    return dg.AssetCheckResult(
        check_name=BARS_RECONCILE,
        passed=passed,
        description="; ".join(problems) or f"{len(seconds)} seconds, every trade accounted for",
        metadata={
            "bars": len(seconds),
            "seconds_expected": len(expected),
            "trades_in_bars": totals["trades"][0],
            "trades_in_silver": counts,
            "mismatched": dg.MetadataValue.json({k: list(v) for k, v in mismatched.items()}),
        },
    )
