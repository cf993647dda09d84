"""Loaders for recorded market captures, as the tables the batch path and replays read."""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow as pa

from realtime.market.arrow_schemas import BEST_BID_ASK
from realtime.market.fixed_point import parse_e8

BOOK_TICKER_HEADER = [
    "update_id",
    "best_bid_price",
    "best_bid_qty",
    "best_ask_price",
    "best_ask_qty",
    "local_recv_ts_ns",
]


def book_ticker_csv(path: Path) -> pa.Table:
    """A recorded bookTicker CSV as a ``BEST_BID_ASK`` table, ordered as recorded.

    Spot bookTicker messages carry no exchange time: ``event_time`` is the local receive
    time (ns in the file, truncated to us), the only clock the capture has.
    """
    columns: dict[str, list[int]] = {name: [] for name in BEST_BID_ASK.names}
    with path.open(newline="") as file:
        reader = csv.reader(file)
        header = next(reader)
        if header != BOOK_TICKER_HEADER:
            raise ValueError(f"{path}: expected header {BOOK_TICKER_HEADER}, found {header}")
        for line_number, row in enumerate(reader, start=2):
            try:
                update_id, bid, bid_qty, ask, ask_qty, received_ns = row
                columns["event_time"].append(int(received_ns) // 1000)
                columns["book_update_id"].append(int(update_id))
                columns["bid_price_e8"].append(parse_e8(bid))
                columns["bid_qty_e8"].append(parse_e8(bid_qty))
                columns["ask_price_e8"].append(parse_e8(ask))
                columns["ask_qty_e8"].append(parse_e8(ask_qty))
            except ValueError as error:
                raise ValueError(f"{path}:{line_number}: {error}") from error
    return pa.table(columns, schema=BEST_BID_ASK)
