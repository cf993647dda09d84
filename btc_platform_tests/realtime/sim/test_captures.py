"""Recorded capture loaders."""

from __future__ import annotations

from pathlib import Path

import pytest

from realtime.market.arrow_schemas import BEST_BID_ASK
from realtime.sim.captures import book_ticker_csv

CAPTURE = Path(__file__).parents[2] / "fixtures" / "binance_capture_2023-04-05"


def test_real_book_ticker_loads_exactly():
    quotes = book_ticker_csv(CAPTURE / "bookTicker.csv")
    assert quotes.schema == BEST_BID_ASK
    assert quotes.num_rows == 8_015
    first = quotes.slice(0, 1).to_pylist()[0]
    assert first["book_update_id"] == 36090299876
    assert (first["bid_price_e8"], first["bid_qty_e8"]) == (2816547000000, 798680000)
    assert (first["ask_price_e8"], first["ask_qty_e8"]) == (2816548000000, 326888000)
    assert first["event_time"].timestamp() == pytest.approx(1680652800.004231)


def test_a_bad_row_names_its_line(tmp_path):
    path = tmp_path / "bookTicker.csv"
    path.write_text(
        "update_id,best_bid_price,best_bid_qty,best_ask_price,best_ask_qty,local_recv_ts_ns\n"
        "1,28165.47000000,1,28165.48,1,1680652800004231000\n"
        "2,not-a-price,1,28165.48,1,1680652800004231001\n"
    )
    with pytest.raises(ValueError, match=r"bookTicker.csv:3: not a decimal number"):
        book_ticker_csv(path)
