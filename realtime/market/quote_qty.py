"""Quote quantities (``price x qty``) of trades at e8, exactly: one rule for every table."""

from __future__ import annotations

import numpy as np


def quote_qty_e8(price_e8: np.ndarray, qty_e8: np.ndarray) -> np.ndarray:
    """``price x qty`` at e8, exactly; Python ints (object array) when int64 could overflow.

    On BTCUSDT's grid (tick 0.01, lot 0.00001) the product is a whole number of e8 units and
    fits int64; anything else is computed in Python integers and truncated to 8 decimals.
    """
    price = np.asarray(price_e8, dtype=np.int64)
    qty = np.asarray(qty_e8, dtype=np.int64)
    on_grid = bool(np.all(price % 1_000_000 == 0)) and bool(np.all(qty % 100 == 0))
    if on_grid and (
        price.size == 0 or int(price.max()) // 1_000_000 < 2**62 // max(1, int(qty.max()))
    ):
        return (price // 1_000_000) * (qty // 100)
    exact = [int(p) * int(q) // 10**8 for p, q in zip(price.tolist(), qty.tolist(), strict=True)]
    return np.array(exact, dtype=object)
