"""Bronze: Binance aggregate trades, hourly, with their completeness proof."""
