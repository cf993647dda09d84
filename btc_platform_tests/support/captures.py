"""Where the recorded real-market fixtures are."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).parents[1] / "fixtures"
CAPTURE_DIR = FIXTURES / "binance_capture_2023-04-05"
CAPTURE_JSON = CAPTURE_DIR / "capture_json_stream.dat.gz"
"""Real BTCUSDT 2023-04-05 00:00-00:07, JSON combined stream: trades, bookTicker, depth."""
