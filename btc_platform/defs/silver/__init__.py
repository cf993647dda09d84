"""Silver: deduplicated trades, exact per-second bars and the contract's features, daily."""
