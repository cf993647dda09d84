"""Lake tables of two synthetic markets, built once: GX validation is the slow part."""

from __future__ import annotations

import pytest

from btc_platform_tests.support.lake_tables import MarketTables, market_tables


@pytest.fixture(scope="session")
def quiet_market() -> MarketTables:
    """20 minutes at ~3 trades/s: many seconds without trades, half of them quoted."""
    return market_tables(1_200, trades_per_second=3.0, seed=11)


@pytest.fixture(scope="session")
def busy_market() -> MarketTables:
    """Two hours at ~25 trades/s (a normal BTCUSDT pace): long enough that the 60 s
    warm-up stays under the features' 1 % undefined-share bound."""
    return market_tables(7_200, trades_per_second=25.0, seed=7)
