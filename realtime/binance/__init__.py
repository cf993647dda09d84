"""Binance Spot wire formats and clients: SBE stream codec, REST, archive files."""
