"""Exchange-neutral market data: fixed-point numbers, normalised events, Arrow schemas."""
