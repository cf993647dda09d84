"""The synthetic trade day: deterministic, ordered, on the tick, with silent stretches."""

from __future__ import annotations

import numpy as np

from realtime.market.arrow_schemas import TRADES
from realtime.sim.synthetic_trades import MIN_QTY_E8, TICK_E8, synthetic_trades


def test_same_seed_same_day_and_another_seed_another():
    first = synthetic_trades(20_000, seconds=1_200, seed=5)
    assert first.equals(synthetic_trades(20_000, seconds=1_200, seed=5))
    assert not first.equals(synthetic_trades(20_000, seconds=1_200, seed=6))


def test_shape_of_the_day():
    day = synthetic_trades(50_000, seconds=3_600, seed=1, silent_share=0.05)
    assert day.schema == TRADES
    assert abs(day.num_rows - 50_000) < 2_500
    times = day["transact_time"].cast("int64").to_numpy()
    ids = day["trade_id"].to_numpy()
    assert (np.diff(times) >= 0).all()
    assert (np.diff(ids) == 1).all()
    assert (day["price_e8"].to_numpy() % TICK_E8 == 0).all()
    qty = day["qty_e8"].to_numpy()
    assert (qty >= MIN_QTY_E8).all()
    assert (qty % MIN_QTY_E8 == 0).all()
    assert qty.max() > 50 * np.median(qty)  # heavy tail
    active = np.unique(times // 1_000_000)
    assert 3_600 - len(active) > 100  # silent seconds exist
    assert 0.4 < day["is_buyer_maker"].to_numpy().mean() < 0.6
