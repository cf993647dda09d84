"""The combined-stream URL the role connects to."""

from __future__ import annotations

from realtime.ingest.connection import combined_stream_url, stream_names


def test_one_connection_carries_the_four_sbe_streams_of_the_symbol_in_lower_case() -> None:
    assert stream_names("BTCUSDT") == (
        "btcusdt@trade",
        "btcusdt@bestBidAsk",
        "btcusdt@depth",
        "btcusdt@depth20",
    )
    assert combined_stream_url("wss://stream-sbe.binance.com:9443/", "BTCUSDT") == (
        "wss://stream-sbe.binance.com:9443/stream?streams="
        "btcusdt@trade/btcusdt@bestBidAsk/btcusdt@depth/btcusdt@depth20"
    )
