"""One market, three doors: the stream, REST and the archive files agree, and losses show.

The exchange runs for real on a free port; clients are the platform's own (the REST client
and pager, the archive client) and a plain aiohttp WebSocket.
"""

from __future__ import annotations

import datetime as dt
import math
from itertools import pairwise
from pathlib import Path

import aiohttp
import numpy as np
import pytest

from btc_platform_tests.support.stream_client import (
    post_fault,
    read_messages,
    stream_socket,
    trades_of,
)
from realtime.binance.archive import ArchiveClient, ArchiveFile
from realtime.binance.archive_csv import read_table
from realtime.binance.rest import AggTradePager, BinanceRestClient
from realtime.market.book_sync import BookSynchroniser, DiffOutcome, SnapshotOutcome
from realtime.market.events import DepthDiff, TradeBatch
from realtime.sim.capture_replay import CaptureReplay
from realtime.sim.exchange import ExchangeConfig, LocalExchange
from realtime.sim.market_model import MarketModel, MarketParams

FIXTURES = Path(__file__).parents[2] / "fixtures"
CAPTURE = FIXTURES / "binance_capture_2023-04-05" / "capture_json_stream.dat.gz"
DAY = dt.date(2026, 1, 1)
MIDNIGHT_US = 1_767_312_000_000_000  # 2026-01-02T00:00:00Z
US = 1_000_000


def unlimited(**overrides: object) -> ExchangeConfig:
    return ExchangeConfig(speed=math.inf, weight_limit=None, **overrides)  # type: ignore[arg-type]


async def test_stream_rest_and_archive_carry_the_same_trades(tmp_path: Path) -> None:
    """A stream window == the same window by REST (aggTrades, historicalTrades) == archive."""
    start_us = MIDNIGHT_US - 120 * US
    source = MarketModel(MarketParams(seed=11, start_time_us=start_us))
    async with LocalExchange(source, unlimited(history_s=60)) as exchange:
        window = (start_us + 60 * US, MIDNIGHT_US)  # live from its first microsecond
        async with stream_socket(exchange.stream_url, [exchange.stream("trade")]) as ws:
            messages = await read_messages(
                ws,
                lambda ms: (
                    isinstance(ms[-1], TradeBatch)
                    and ms[-1].transact_time_us >= MIDNIGHT_US + 5 * US
                ),
            )
        streamed = [t for t in trades_of(messages) if window[0] <= t.transact_time_us < window[1]]
        stream_ids = [t.trade_id for t in streamed]
        assert len(stream_ids) > 300
        assert stream_ids == list(range(stream_ids[0], stream_ids[-1] + 1))

        async with BinanceRestClient(exchange.rest_url) as client:
            pager = AggTradePager(
                client, "BTCUSDT", start_time_us=window[0], end_time_us=window[1] - 1, limit=100
            )
            aggs = [agg async for page in pager for agg in page]
            historical = []
            next_id = stream_ids[0]
            while next_id <= stream_ids[-1]:
                page = await client.historical_trades("BTCUSDT", from_id=next_id, limit=1000)
                historical += [t for t in page if t.trade_id <= stream_ids[-1]]
                next_id = page[-1].trade_id + 1
        rest_ids = [i for agg in aggs for i in range(agg.first_trade_id, agg.last_trade_id + 1)]
        assert rest_ids == stream_ids
        assert [(t.trade_id, t.price_e8, t.qty_e8, t.is_buyer_maker) for t in historical] == [
            (t.trade_id, t.price_e8, t.qty_e8, t.is_buyer_maker) for t in streamed
        ]
        # An aggregate trade's quantity is the sum of its raw trades'.
        qty_by_id = {t.trade_id: t.qty_e8 for t in streamed}
        for agg in aggs:
            assert agg.qty_e8 == sum(
                qty_by_id[i] for i in range(agg.first_trade_id, agg.last_trade_id + 1)
            )

        async with ArchiveClient(exchange.archive_url) as archive:
            agg_zip = await archive.download(ArchiveFile.daily("aggTrades", DAY), tmp_path)
            trades_zip = await archive.download(ArchiveFile.daily("trades", DAY), tmp_path)
    agg_table = read_table(agg_zip, "aggTrades")
    times = agg_table["transact_time"].cast("int64").to_numpy()
    in_window = (times >= window[0]) & (times < window[1])
    first_ids = agg_table["first_trade_id"].to_numpy()[in_window]
    last_ids = agg_table["last_trade_id"].to_numpy()[in_window]
    archive_ids = [
        i for f, last in zip(first_ids, last_ids, strict=True) for i in range(f, last + 1)
    ]
    assert archive_ids == stream_ids
    trade_table = read_table(trades_zip, "trades")
    ids = trade_table["trade_id"].to_numpy()
    selected = np.isin(ids, stream_ids)
    assert ids[selected].tolist() == stream_ids
    assert trade_table["price_e8"].to_numpy()[selected].tolist() == [t.price_e8 for t in streamed]


def paused(**overrides: object) -> ExchangeConfig:
    return ExchangeConfig(speed=0, weight_limit=None, **overrides)  # type: ignore[arg-type]


async def drain_diffs(
    exchange: LocalExchange, ws: aiohttp.ClientWebSocketResponse, seconds: int
) -> list[DepthDiff]:
    """Play ``seconds`` more of the paused market and read every diff it sent."""
    await exchange.advance_to(exchange.now_us() + 1 + seconds * US)
    last_id = exchange.market.book.last_update_id
    messages = await read_messages(
        ws, lambda ms: isinstance(ms[-1], DepthDiff) and ms[-1].last_update_id >= last_id
    )
    return [m for m in messages if isinstance(m, DepthDiff)]


async def test_dropped_diffs_are_a_gap_and_a_new_snapshot_resyncs() -> None:
    """Binance's procedure over the stream: sync, lose two diffs, see the gap, resync by REST."""
    async with (
        LocalExchange(MarketModel(MarketParams(seed=5)), paused(history_s=30)) as exchange,
        BinanceRestClient(exchange.rest_url) as client,
        stream_socket(exchange.stream_url, [exchange.stream("depth")]) as ws,
    ):
        book = BookSynchroniser("BTCUSDT")
        # Buffer a few seconds of diffs, take the snapshot, feed on: the book syncs.
        for diff in await drain_diffs(exchange, ws, 2):
            assert book.on_diff(diff) is DiffOutcome.BUFFERED
        assert book.on_snapshot(await client.depth("BTCUSDT", 5000)) is SnapshotOutcome.SYNCED
        assert {book.on_diff(d) for d in await drain_diffs(exchange, ws, 2)} == {
            DiffOutcome.APPLIED
        }

        fault = {"fault": "drop", "stream": exchange.stream("depth"), "count": 2}
        await post_fault(exchange.admin_url, fault)
        synced = book.book
        assert synced is not None
        expected_first_id = synced.last_update_id + 1
        after = await drain_diffs(exchange, ws, 2)
        assert book.on_diff(after[0]) is DiffOutcome.GAP
        assert book.last_gap is not None
        assert book.last_gap.expected_first_id == expected_first_id
        assert book.last_gap.got_first_id == after[0].first_update_id
        assert book.last_gap.missing_ids >= 2  # two whole diffs of one update id or more
        assert book.needs_snapshot
        for diff in after[1:]:
            book.on_diff(diff)

        assert book.on_snapshot(await client.depth("BTCUSDT", 5000)) is SnapshotOutcome.SYNCED
        assert {book.on_diff(d) for d in await drain_diffs(exchange, ws, 2)} == {
            DiffOutcome.APPLIED
        }
        # Paused, so REST shows the same moment: the resynced book is the exchange's book.
        depth = await client.depth("BTCUSDT", 20)
        resynced = book.book
        assert resynced is not None
        assert resynced.last_update_id == depth.last_update_id
        assert resynced.top(20) == (depth.bids, depth.asks)


async def drain_trades(
    exchange: LocalExchange, ws: aiohttp.ClientWebSocketResponse, seconds: int
) -> list[int]:
    """Play ``seconds`` more of the paused market; the trade ids the stream delivered."""
    await exchange.advance_to(exchange.now_us() + 1 + seconds * US)
    last_id = exchange.status()["last_trade_id"]
    messages = await read_messages(ws, lambda ms: ms[-1].trades[-1].trade_id == last_id)
    return [t.trade_id for t in trades_of(messages)]


async def test_a_dropped_trade_frame_shows_as_an_id_jump_and_rest_fills_it_exactly() -> None:
    async with (
        LocalExchange(MarketModel(MarketParams(seed=3)), paused(history_s=10)) as exchange,
        BinanceRestClient(exchange.rest_url) as client,
        stream_socket(exchange.stream_url, [exchange.stream("trade")]) as ws,
    ):
        seen = await drain_trades(exchange, ws, 5)
        fault = {"fault": "drop", "stream": exchange.stream("trade"), "count": 3}
        await post_fault(exchange.admin_url, fault)
        seen += await drain_trades(exchange, ws, 5)
        jumps = [(a, b) for a, b in pairwise(seen) if b != a + 1]
        assert len(jumps) == 1
        last_before, first_after = jumps[0]
        assert first_after - last_before - 1 == 3

        recovered = await client.historical_trades("BTCUSDT", from_id=last_before + 1, limit=3)
        assert [t.trade_id for t in recovered] == [
            last_before + 1,
            last_before + 2,
            last_before + 3,
        ]
        merged = sorted(seen + [t.trade_id for t in recovered])
        assert merged == list(range(merged[0], merged[-1] + 1))


async def test_replaying_the_real_capture_reproduces_it_as_sbe_frames() -> None:
    """Trade ids and prices of 2023-04-05 and its unbroken depth chain, through the socket."""
    reference = CaptureReplay(CAPTURE)
    expected_trades = [t for e in reference.events() if isinstance(e, TradeBatch) for t in e.trades]
    expected_diffs = [e for e in reference.events() if isinstance(e, DepthDiff)]
    assert len(expected_trades) == 3144
    assert len(expected_diffs) == 3929

    async with (
        LocalExchange(CaptureReplay(CAPTURE), unlimited()) as exchange,
        stream_socket(
            exchange.stream_url, [exchange.stream("trade"), exchange.stream("depth")]
        ) as ws,
    ):
        last_u = expected_diffs[-1].last_update_id
        messages = await read_messages(
            ws,
            lambda ms: isinstance(ms[-1], DepthDiff) and ms[-1].last_update_id == last_u,
        )
        # Trades still in flight after the last diff.
        remaining = 3144 - len(trades_of(messages))
        if remaining:
            messages += await read_messages(ws, lambda ms: len(trades_of(ms)) == remaining)
    trades = trades_of(messages)
    diffs = [m for m in messages if isinstance(m, DepthDiff)]
    assert [t.trade_id for t in trades] == list(range(3071245454, 3071248598))
    assert [(t.price_e8, t.qty_e8, t.is_buyer_maker) for t in trades] == [
        (t.price_e8, t.qty_e8, t.is_buyer_maker) for t in expected_trades
    ]
    assert diffs == expected_diffs
    assert all(b.first_update_id == a.last_update_id + 1 for a, b in pairwise(diffs))


@pytest.fixture(autouse=True)
def _fixture_present() -> None:
    assert CAPTURE.exists(), f"missing fixture {CAPTURE}"
