"""The local exchange's REST side, on a free port, through the platform's clients and raw HTTP.

Wire shapes, units, weights and errors as Binance documents them (SPEC section 2); the weight
limit and forced statuses on virtual clocks; withheld ids against the pager; archive files
through the archive client. Paused exchanges only: nothing moves unless a test moves it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import zipfile
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from realtime.binance.archive import (
    ArchiveClient,
    ArchiveFile,
    ArchiveNotFound,
    ChecksumMismatch,
    read_table,
    verify_checksum,
)
from realtime.binance.errors import AggTradeGap, BinanceApiError
from realtime.binance.rest import AggTradePager, BinanceRestClient
from realtime.clock import VirtualClock
from realtime.market.events import DepthSnapshot
from realtime.market.fixed_point import format_e8, parse_e8
from realtime.sim.capture_replay import CaptureReplay
from realtime.sim.exchange import ExchangeConfig, LocalExchange
from realtime.sim.market_model import MarketModel, MarketParams
from realtime.sim.source import SourceEvent

FIXTURES = Path(__file__).parents[2] / "fixtures"
CAPTURE = FIXTURES / "binance_capture_2023-04-05" / "capture_json_stream.dat.gz"
SYMBOL = "BTCUSDT"
FIRST_TRADE_ID = 3_071_245_454
LAST_TRADE_ID = 3_071_248_597
N_TRADES = 3_144
FIRST_TRADE_US = 1_680_652_799_999_000  # 2023-04-04T23:59:59.999Z
DAY_2023_04_05_US = 1_680_652_800_000_000
MINUTE_US = 60_000_000
MINUTE_START_S = 1_767_225_600.0  # a calendar minute's first second, for virtual clocks
WEIGHT = "X-MBX-USED-WEIGHT-1M"
MICROS = {"X-MBX-TIME-UNIT": "MICROSECOND"}


class RecordedCapture:
    """The capture's events, parsed once per session: a ``MarketSource`` in one slice."""

    def __init__(self) -> None:
        replay, events = _capture()
        self.symbol = replay.symbol
        self.first_agg_trade_id = replay.first_agg_trade_id
        self._book = replay.initial_book()
        self._events: list[SourceEvent] | None = events

    def initial_book(self) -> DepthSnapshot:
        return self._book

    def next_events(self) -> list[SourceEvent] | None:
        events, self._events = self._events, None
        return events


@functools.cache
def _capture() -> tuple[CaptureReplay, list[SourceEvent]]:
    replay = CaptureReplay(CAPTURE)
    return replay, list(CaptureReplay(CAPTURE).events())


@contextlib.asynccontextmanager
async def capture_exchange(
    clock: VirtualClock | None = None, **overrides: Any
) -> AsyncIterator[LocalExchange]:
    """The whole 2023-04-05 capture as history, paused, no weight limit unless overridden."""
    options: dict[str, Any] = {"speed": 0, "history_s": 600, "weight_limit": None, **overrides}
    clock = clock or VirtualClock(MINUTE_START_S + 1)
    async with LocalExchange(RecordedCapture(), ExchangeConfig(**options), clock) as exchange:
        yield exchange


class Raw:
    """Plain aiohttp GETs against one exchange: status, decoded body and headers."""

    def __init__(self, exchange: LocalExchange, session: aiohttp.ClientSession) -> None:
        self.exchange = exchange
        self.session = session

    async def get(
        self, path: str, headers: dict[str, str] | None = None, **params: Any
    ) -> tuple[int, Any, dict[str, str]]:
        query = {key: str(value) for key, value in params.items()}
        url = self.exchange.rest_url + path
        async with self.session.get(url, params=query, headers=headers or {}) as response:
            body = await response.json(content_type=None)
            return response.status, body, dict(response.headers)


@contextlib.asynccontextmanager
async def raw_client(exchange: LocalExchange) -> AsyncIterator[Raw]:
    async with aiohttp.ClientSession() as session:
        yield Raw(exchange, session)


def is_e8_string(value: Any) -> bool:
    return isinstance(value, str) and format_e8(parse_e8(value)) == value


# -- wire shapes and units -------------------------------------------------------------------


async def test_agg_trades_shape_and_time_units() -> None:
    async with capture_exchange() as exchange, raw_client(exchange) as raw:
        aggs = exchange.market.tape.agg_trades()
        status, rows, headers = await raw.get("/api/v3/aggTrades", symbol=SYMBOL, limit=5)
        assert status == 200
        assert headers["Content-Type"].startswith("application/json")
        assert [list(row) for row in rows] == [["a", "p", "q", "f", "l", "T", "m", "M"]] * 5
        assert [row["a"] for row in rows] == aggs.agg_trade_id[-5:].tolist()
        assert [row["p"] for row in rows] == [format_e8(p) for p in aggs.price_e8[-5:].tolist()]
        assert [row["q"] for row in rows] == [format_e8(q) for q in aggs.qty_e8[-5:].tolist()]
        assert [row["f"] for row in rows] == aggs.first_trade_id[-5:].tolist()
        assert [row["l"] for row in rows] == aggs.last_trade_id[-5:].tolist()
        assert [row["m"] for row in rows] == aggs.is_buyer_maker[-5:].tolist()
        assert all(row["M"] is True for row in rows)
        assert all(is_e8_string(row["p"]) and is_e8_string(row["q"]) for row in rows)
        # Milliseconds by default, microseconds on request (either spelling of the header).
        assert [row["T"] for row in rows] == (aggs.time_us[-5:] // 1000).tolist()
        for unit in ("MICROSECOND", "microsecond"):
            _, micros, _ = await raw.get(
                "/api/v3/aggTrades", {"X-MBX-TIME-UNIT": unit}, symbol=SYMBOL, limit=5
            )
            assert [row["T"] for row in micros] == aggs.time_us[-5:].tolist()
        assert rows[-1]["T"] < 10**14 <= micros[-1]["T"]


async def test_trades_and_historical_trades_shape() -> None:
    async with capture_exchange() as exchange, raw_client(exchange) as raw:
        keys = ["id", "price", "qty", "quoteQty", "time", "isBuyerMaker", "isBestMatch"]
        _, recent, _ = await raw.get("/api/v3/trades", symbol=SYMBOL, limit=3)
        assert [row["id"] for row in recent] == list(range(LAST_TRADE_ID - 2, LAST_TRADE_ID + 1))
        _, old, _ = await raw.get(
            "/api/v3/historicalTrades", MICROS, symbol=SYMBOL, fromId=FIRST_TRADE_ID, limit=2
        )
        assert [row["id"] for row in old] == [FIRST_TRADE_ID, FIRST_TRADE_ID + 1]
        assert old[0]["time"] == FIRST_TRADE_US
        for row in recent + old:
            assert list(row) == keys
            assert all(is_e8_string(row[key]) for key in ("price", "qty", "quoteQty"))
            assert parse_e8(row["quoteQty"]) == parse_e8(row["price"]) * parse_e8(row["qty"]) // (
                10**8
            )
            assert isinstance(row["isBuyerMaker"], bool)
            assert row["isBestMatch"] is True
        assert recent[-1]["time"] == exchange.market.tape.last_time_us // 1000


async def test_klines_are_twelve_element_arrays() -> None:
    async with capture_exchange() as exchange, raw_client(exchange) as raw:
        _, rows, _ = await raw.get(
            "/api/v3/klines", symbol=SYMBOL, interval="1m", startTime=DAY_2023_04_05_US // 1000
        )
        # 00:00 to the exchange's now (00:10, the end of the history), one candle a minute.
        assert [row[0] for row in rows] == [
            (DAY_2023_04_05_US + k * MINUTE_US) // 1000 for k in range(11)
        ]
        for row in rows:
            assert len(row) == 12
            assert [type(value) for value in row] == [int, *[str] * 5, int, str, int, *[str] * 3]
            assert row[6] == row[0] + 59_999
            assert row[11] == "0"
            assert all(is_e8_string(value) for value in [*row[1:6], row[7], row[9], row[10]])
        _, micros, _ = await raw.get(
            "/api/v3/klines", MICROS, symbol=SYMBOL, interval="1m", limit=1
        )
        assert micros[0][0] == DAY_2023_04_05_US + 10 * MINUTE_US
        assert micros[0][6] == micros[0][0] + MINUTE_US - 1
        # After the capture's last trade (~00:06:54), candles carry the close, no volume.
        assert micros[0][8] == 0
        assert micros[0][1] == micros[0][4] == rows[6][4]


async def test_start_and_end_time_are_accepted_in_ms_or_us() -> None:
    async with capture_exchange() as exchange, raw_client(exchange) as raw:
        start_us = DAY_2023_04_05_US + 30 * 1_000_000
        end_us = start_us + 10_000_000
        by_ms = await raw.get(
            "/api/v3/aggTrades", MICROS, symbol=SYMBOL, startTime=start_us // 1000,
            endTime=end_us // 1000,
        )  # fmt: skip
        by_us = await raw.get(
            "/api/v3/aggTrades", MICROS, symbol=SYMBOL, startTime=start_us, endTime=end_us
        )
        assert by_ms[1] == by_us[1]
        times = [row["T"] for row in by_us[1]]
        assert len(times) > 10
        assert start_us <= min(times)
        assert max(times) <= end_us
        aggs = exchange.market.tape.agg_trades()
        inside = (aggs.time_us >= start_us) & (aggs.time_us <= end_us)
        assert [row["a"] for row in by_us[1]] == aggs.agg_trade_id[inside].tolist()
        klines_ms = await raw.get(
            "/api/v3/klines", symbol=SYMBOL, interval="1m", startTime=start_us // 1000, limit=2
        )
        klines_us = await raw.get(
            "/api/v3/klines", symbol=SYMBOL, interval="1m", startTime=start_us, limit=2
        )
        assert klines_ms[1] == klines_us[1]
        assert [row[0] for row in klines_ms[1]] == [
            (DAY_2023_04_05_US + k * MINUTE_US) // 1000 for k in (1, 2)
        ]


async def test_depth_is_the_exchange_book_best_first_and_clipped_at_5000() -> None:
    async with capture_exchange() as exchange, raw_client(exchange) as raw:
        status, depth, _ = await raw.get("/api/v3/depth", symbol=SYMBOL, limit=5)
        assert status == 200
        assert list(depth) == ["lastUpdateId", "bids", "asks"]
        book = exchange.market.book
        assert depth["lastUpdateId"] == book.last_update_id
        assert len(depth["bids"]) == len(depth["asks"]) == 5
        bids, asks = book.top(5)
        assert depth["bids"] == [[format_e8(p), format_e8(q)] for p, q in bids]
        assert depth["asks"] == [[format_e8(p), format_e8(q)] for p, q in asks]

        _, whole, _ = await raw.get("/api/v3/depth", symbol=SYMBOL, limit=6000)
        assert len(whole["bids"]) == min(5000, book.bid_level_count)
        assert len(whole["asks"]) == min(5000, book.ask_level_count)
        bid_prices = [parse_e8(p) for p, _ in whole["bids"]]
        ask_prices = [parse_e8(p) for p, _ in whole["asks"]]
        assert bid_prices == sorted(bid_prices, reverse=True)
        assert ask_prices == sorted(ask_prices)
        assert len(set(bid_prices)) == len(bid_prices)
        assert bid_prices[0] < ask_prices[0]
        assert all(
            is_e8_string(value) for level in whole["bids"] + whole["asks"] for value in level
        )


async def test_exchange_info_and_server_time() -> None:
    async with (
        capture_exchange() as exchange,
        BinanceRestClient(exchange.rest_url, clock=VirtualClock()) as client,
    ):
        info = await client.exchange_info(SYMBOL)
        (symbol,) = info["symbols"]
        assert symbol["symbol"] == SYMBOL
        assert (symbol["baseAsset"], symbol["quoteAsset"]) == ("BTC", "USDT")
        filters = {f["filterType"]: f for f in symbol["filters"]}
        assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000"
        assert filters["LOT_SIZE"]["stepSize"] == "0.00001000"
        weight_limit = next(
            limit for limit in info["rateLimits"] if limit["rateLimitType"] == "REQUEST_WEIGHT"
        )
        assert (weight_limit["interval"], weight_limit["limit"]) == ("MINUTE", 6000)
        assert info["serverTime"] == exchange.now_us()  # the client asks for µs
        assert await client.server_time_us() == exchange.now_us()
        await client.ping()
        async with raw_client(exchange) as raw:
            _, server_time, _ = await raw.get("/api/v3/time")
            assert server_time == {"serverTime": exchange.now_us() // 1000}


# -- weights ---------------------------------------------------------------------------------


async def test_every_response_carries_the_used_weight_growing_by_the_documented_weight() -> None:
    requests: list[tuple[str, dict[str, Any], int]] = [
        ("/api/v3/aggTrades", {"symbol": SYMBOL}, 4),
        ("/api/v3/trades", {"symbol": SYMBOL}, 25),
        ("/api/v3/historicalTrades", {"symbol": SYMBOL}, 25),
        ("/api/v3/klines", {"symbol": SYMBOL, "interval": "1m"}, 2),
        ("/api/v3/depth", {"symbol": SYMBOL}, 5),
        ("/api/v3/depth", {"symbol": SYMBOL, "limit": 100}, 5),
        ("/api/v3/depth", {"symbol": SYMBOL, "limit": 101}, 25),
        ("/api/v3/depth", {"symbol": SYMBOL, "limit": 500}, 25),
        ("/api/v3/depth", {"symbol": SYMBOL, "limit": 1000}, 50),
        ("/api/v3/depth", {"symbol": SYMBOL, "limit": 1001}, 250),
        ("/api/v3/depth", {"symbol": SYMBOL, "limit": 9999}, 250),
        ("/api/v3/exchangeInfo", {}, 20),
        ("/api/v3/time", {}, 1),
        ("/api/v3/ping", {}, 1),
        ("/api/v3/aggTrades", {"symbol": "ETHUSDT"}, 4),  # errors are weighed and reported too
    ]
    async with capture_exchange() as exchange, raw_client(exchange) as raw:
        used = 0
        for path, params, weight in requests:
            status, _, headers = await raw.get(path, **params)
            used += weight
            assert (path, params, headers[WEIGHT]) == (path, params, str(used))
            assert status == (400 if params.get("symbol") == "ETHUSDT" else 200)
        assert exchange.limiter.used_weight("127.0.0.1") == used


# -- errors ----------------------------------------------------------------------------------


async def test_errors_are_binance_shaped_and_the_client_raises_them() -> None:
    async with capture_exchange() as exchange, raw_client(exchange) as raw:
        cases = [
            ("/api/v3/aggTrades", {"symbol": "ETHUSDT"}, -1121),
            ("/api/v3/aggTrades", {}, -1102),
            ("/api/v3/trades", {}, -1102),
            ("/api/v3/depth", {"symbol": "NOPE"}, -1121),
            ("/api/v3/exchangeInfo", {"symbol": "ETHUSDT"}, -1121),
            ("/api/v3/aggTrades", {"symbol": SYMBOL, "limit": 1001}, -1130),
            ("/api/v3/aggTrades", {"symbol": SYMBOL, "limit": 0}, -1130),
            ("/api/v3/historicalTrades", {"symbol": SYMBOL, "fromId": "x"}, -1100),
            ("/api/v3/klines", {"symbol": SYMBOL, "interval": "2m"}, -1120),
        ]
        for path, params, code in cases:
            status, body, headers = await raw.get(path, **params)
            assert (path, params, status, body["code"]) == (path, params, 400, code)
            assert list(body) == ["code", "msg"]
            assert body["msg"]
            assert WEIGHT in headers

    async with (
        capture_exchange() as exchange,
        BinanceRestClient(exchange.rest_url, clock=VirtualClock()) as client,
    ):
        with pytest.raises(BinanceApiError) as invalid:
            await client.agg_trades("ETHUSDT")
        assert (invalid.value.status, invalid.value.code) == (400, -1121)
        with pytest.raises(BinanceApiError) as too_many:
            await client.get_json("/api/v3/aggTrades", {"symbol": SYMBOL, "limit": 1001}, weight=4)
        assert (too_many.value.status, too_many.value.code) == (400, -1130)
        # The client did not retry a client error: one request each.
        assert exchange.rest.requests == 2


# -- klines against the raw trades -----------------------------------------------------------


async def test_klines_count_and_volume_equal_the_raw_trades_by_rest() -> None:
    async with (
        capture_exchange() as exchange,
        BinanceRestClient(exchange.rest_url, clock=VirtualClock()) as client,
    ):
        trades = []
        next_id = FIRST_TRADE_ID
        while next_id <= LAST_TRADE_ID:
            page = await client.historical_trades(SYMBOL, from_id=next_id, limit=1000)
            trades += page
            next_id = page[-1].trade_id + 1
        assert [t.trade_id for t in trades] == list(range(FIRST_TRADE_ID, LAST_TRADE_ID + 1))

        start_us = DAY_2023_04_05_US + MINUTE_US
        end_us = start_us + 4 * MINUTE_US - 1
        klines = await client.klines(SYMBOL, "1m", start_us, end_us)
        assert klines.num_rows == 4
        inside = [t for t in trades if start_us <= t.transact_time_us <= end_us]
        assert sum(klines["trade_count"].to_pylist()) == len(inside) > 1000
        e8 = Decimal("1e-8")
        assert sum(klines["volume"].to_pylist()) == sum(t.qty_e8 for t in inside) * e8
        buys = [t for t in inside if not t.is_buyer_maker]
        assert sum(klines["taker_buy_base_volume"].to_pylist()) == sum(t.qty_e8 for t in buys) * e8
        assert sum(klines["quote_volume"].to_pylist()) == (
            sum(t.price_e8 * t.qty_e8 // 10**8 for t in inside) * e8
        )
        for row in klines.to_pylist():
            open_us = int(row["open_time"].timestamp() * 1_000_000)
            minute = [t for t in inside if open_us <= t.transact_time_us < open_us + MINUTE_US]
            prices = [t.price_e8 for t in minute]
            assert (row["open_e8"], row["high_e8"], row["low_e8"], row["close_e8"]) == (
                prices[0],
                max(prices),
                min(prices),
                prices[-1],
            )


# -- the weight limit and forced statuses ----------------------------------------------------


async def test_weight_limit_429_then_418_on_the_exchange_clock() -> None:
    clock = VirtualClock(MINUTE_START_S + 20.5)
    async with (
        capture_exchange(clock, weight_limit=100, ban_after=2, ban_s=120.0) as exchange,
        raw_client(exchange) as raw,
    ):
        for _ in range(25):
            status, _, headers = await raw.get("/api/v3/aggTrades", symbol=SYMBOL, limit=1)
            assert status == 200
        assert headers[WEIGHT] == "100"
        status, body, headers = await raw.get("/api/v3/ping")
        assert (status, body["code"], headers["Retry-After"], headers[WEIGHT]) == (
            429,
            -1003,
            "40",  # 39.5 s to the next minute, rounded up
            "100",
        )
        assert (await raw.get("/api/v3/ping"))[0] == 429
        status, body, headers = await raw.get("/api/v3/ping")
        assert (status, body["code"], headers["Retry-After"]) == (418, -1003, "120")
        clock.advance(60.0)  # a new minute does not lift the ban
        status, _, headers = await raw.get("/api/v3/ping")
        assert (status, headers["Retry-After"], headers[WEIGHT]) == (418, "60", "0")
        clock.advance(60.0)
        status, _, headers = await raw.get("/api/v3/ping")
        assert (status, headers[WEIGHT]) == (200, "1")
        assert exchange.status()["rest_refused"] == 4


async def test_the_client_waits_out_a_429_from_the_weight_limit() -> None:
    """Server and client on one virtual clock: the wait is exactly the Retry-After."""
    clock = VirtualClock(MINUTE_START_S + 45.0)
    async with (
        capture_exchange(clock, weight_limit=10) as exchange,
        BinanceRestClient(exchange.rest_url, clock=clock) as client,
    ):
        for _ in range(2):
            await client.agg_trades(SYMBOL, limit=1)
        assert clock.sleeps == []
        page = await client.agg_trades(SYMBOL, limit=1)  # 12 > 10: 429, wait, then served
        assert len(page) == 1
        assert clock.sleeps == [15.0]
        assert exchange.rest.refused == 1
        assert exchange.limiter.used_weight("127.0.0.1") == 4


async def post_fault(exchange: LocalExchange, body: Any) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{exchange.admin_url}/faults", json=body) as response,
    ):
        return response.status, await response.json()


async def delete_faults(exchange: LocalExchange) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.delete(f"{exchange.admin_url}/faults") as response,
    ):
        return response.status


@pytest.mark.parametrize("status", [429, 418])
async def test_a_forced_status_is_waited_out_exactly(status: int) -> None:
    async with capture_exchange() as exchange, raw_client(exchange) as raw:
        fault = {"fault": "rest_status", "status": status, "count": 1, "retry_after_s": 7}
        assert await post_fault(exchange, fault) == (200, {"applied": 1})
        forced, body, headers = await raw.get("/api/v3/time")
        assert (forced, body["code"], headers["Retry-After"]) == (status, -1003, "7")
        assert (await raw.get("/api/v3/time"))[0] == 200

        fault = {"fault": "rest_status", "status": status, "count": 2, "retry_after_s": 30}
        assert (await post_fault(exchange, fault))[0] == 200
        clock = VirtualClock()
        async with BinanceRestClient(exchange.rest_url, clock=clock) as client:
            assert await client.server_time_us() == exchange.now_us()
            assert clock.sleeps == [30.0, 30.0]
            stats = client.budget.stats()
            assert (stats.waits, stats.waited_s) == (2, 60.0)
        assert exchange.rest.refused == 3


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"fault": "rest_status", "status": 500}, "'status'"),
        ({"fault": "withhold", "ids": "agg_trade", "first_id": 9, "last_id": 1}, "'first_id'"),
        ({"fault": "drop", "stream": "btcusdt@depth", "count": 0}, "'count'"),
        ({"fault": "boom"}, "'fault'"),
        ([{"fault": "clear"}, {"fault": "corrupt_archive", "kind": "x"}], "'kind'"),
    ],
)
async def test_an_invalid_fault_is_refused_naming_the_field(body: Any, named: str) -> None:
    async with capture_exchange() as exchange:
        status, answer = await post_fault(exchange, body)
        assert status == 400
        assert named in answer["error"]
        # Nothing of a refused batch was applied.
        assert exchange.market.rest_faults.forced_status == []


async def test_a_fault_body_that_is_not_json_is_refused() -> None:
    async with (
        capture_exchange() as exchange,
        aiohttp.ClientSession() as session,
        session.post(f"{exchange.admin_url}/faults", data=b"{nope") as response,
    ):
        assert response.status == 400
        assert "error" in await response.json()


async def test_withheld_agg_ids_are_a_gap_for_the_pager_until_the_faults_are_cleared() -> None:
    async with (
        capture_exchange() as exchange,
        BinanceRestClient(exchange.rest_url, clock=VirtualClock()) as client,
    ):
        first = int(exchange.market.tape.agg_trades().agg_trade_id[0])
        last = exchange.market.tape.next_agg_trade_id - 1
        fault = {
            "fault": "withhold",
            "ids": "agg_trade",
            "first_id": first + 10,
            "last_id": first + 12,
        }
        assert (await post_fault(exchange, fault))[0] == 200

        pager = AggTradePager(client, SYMBOL, from_id=first, limit=5)
        pages = [await anext(pager), await anext(pager)]
        with pytest.raises(AggTradeGap) as gap:
            await anext(pager)
        assert (gap.value.expected_id, gap.value.got_id) == (first + 10, first + 13)
        assert f"expected id {first + 10}, got {first + 13}" in str(gap.value)
        assert [a.agg_trade_id for page in pages for a in page] == list(range(first, first + 10))
        # A page stays full around the hole.
        assert len(await client.agg_trades(SYMBOL, from_id=first + 8, limit=5)) == 5

        assert await delete_faults(exchange) == 200
        resumed = AggTradePager(client, SYMBOL, from_id=pager.next_id, limit=1000)
        ids = [a.agg_trade_id async for page in resumed for a in page]
        assert ids == list(range(first + 10, last + 1))


async def test_withheld_trade_ids_are_missing_from_historical_trades() -> None:
    async with (
        capture_exchange() as exchange,
        BinanceRestClient(exchange.rest_url, clock=VirtualClock()) as client,
    ):
        fault = {"fault": "withhold", "ids": "trade", "first_id": FIRST_TRADE_ID + 2,
                 "last_id": FIRST_TRADE_ID + 3}  # fmt: skip
        assert (await post_fault(exchange, fault))[0] == 200
        page = await client.historical_trades(SYMBOL, from_id=FIRST_TRADE_ID, limit=4)
        assert [t.trade_id - FIRST_TRADE_ID for t in page] == [0, 1, 4, 5]
        assert await delete_faults(exchange) == 200
        page = await client.historical_trades(SYMBOL, from_id=FIRST_TRADE_ID, limit=4)
        assert [t.trade_id - FIRST_TRADE_ID for t in page] == [0, 1, 2, 3]


# -- archive files of the capture ------------------------------------------------------------


async def test_the_capture_day_file_is_in_milliseconds_and_reads_back_in_us(
    tmp_path: Path,
) -> None:
    async with capture_exchange() as exchange, ArchiveClient(exchange.archive_url) as archive:
        assert exchange.status()["archive_days"] == ["2023-04-04"]
        path = await archive.download(ArchiveFile.daily("trades", dt.date(2023, 4, 4)), tmp_path)
        agg_path = await archive.download(
            ArchiveFile.daily("aggTrades", dt.date(2023, 4, 4)), tmp_path
        )
        # 2023-04-05 has not ended at the capture's end, 2023-04-03 is before the market.
        for day in (dt.date(2023, 4, 5), dt.date(2023, 4, 3)):
            with pytest.raises(ArchiveNotFound):
                await archive.download(ArchiveFile.daily("trades", day), tmp_path / "missing")
        assert not any((tmp_path / "missing").iterdir())

    with zipfile.ZipFile(path) as zipped:
        (member,) = zipped.namelist()
        assert member == "BTCUSDT-trades-2023-04-04.csv"
        text = zipped.read(member).decode()
    assert text.splitlines()[0].split(",")[4] == str(FIRST_TRADE_US // 1000)
    table = read_table(path, "trades")
    assert table["trade_id"].to_pylist() == [FIRST_TRADE_ID]
    assert table["transact_time"].cast("int64").to_pylist() == [FIRST_TRADE_US]
    aggs = read_table(agg_path, "aggTrades")
    assert aggs["first_trade_id"].to_pylist() == [FIRST_TRADE_ID]
    assert aggs["transact_time"].cast("int64").to_pylist() == [FIRST_TRADE_US]


async def test_a_day_whose_trades_stop_early_still_has_every_minute_and_matches_binance(
    tmp_path: Path,
) -> None:
    """Played past midnight, 2023-04-05 ends: its files are the real archive's trades."""
    day = dt.date(2023, 4, 5)
    async with capture_exchange() as exchange, ArchiveClient(exchange.archive_url) as archive:
        with pytest.raises(ArchiveNotFound):
            await archive.download(ArchiveFile.daily("trades", day), tmp_path)
        await exchange.advance_to(DAY_2023_04_05_US + 86_400_000_000 + 1)
        assert exchange.status()["archive_days"] == ["2023-04-04", "2023-04-05"]
        trades_zip = await archive.download(ArchiveFile.daily("trades", day), tmp_path)
        klines_zip = await archive.download(
            ArchiveFile.daily("klines", day, interval="1m"), tmp_path
        )
    ours = read_table(trades_zip, "trades")
    binance = read_table(
        FIXTURES / "binance_capture_2023-04-05" / f"BTCUSDT-trades-{day}.zip", "trades"
    )
    assert ours.num_rows == N_TRADES - 1  # the first trade was on 2023-04-04
    assert ours.equals(binance.slice(binance.num_rows - ours.num_rows))

    klines = read_table(klines_zip, "klines")
    # Binance's daily 1m file has all 1440 minutes; those after the last trade carry its close.
    assert klines.num_rows == 1440
    opens = klines["open_time"].cast("int64").to_pylist()
    assert opens == [DAY_2023_04_05_US + k * MINUTE_US for k in range(1440)]
    assert sum(klines["trade_count"].to_pylist()) == N_TRADES - 1
    last_close = ours["price_e8"][-1].as_py()
    assert set(klines["close_e8"].to_pylist()[7:]) == {last_close}
    assert set(klines["trade_count"].to_pylist()[7:]) == {0}


async def test_newest_agg_trades_stay_the_newest_while_older_ids_are_withheld() -> None:
    async with capture_exchange() as exchange, raw_client(exchange) as raw:
        aggs = exchange.market.tape.agg_trades()
        first = int(aggs.agg_trade_id[0])
        fault = {"fault": "withhold", "ids": "agg_trade", "first_id": first, "last_id": first + 2}
        assert (await post_fault(exchange, fault))[0] == 200
        _, newest, _ = await raw.get("/api/v3/aggTrades", symbol=SYMBOL, limit=5)
        assert [row["a"] for row in newest] == aggs.agg_trade_id[-5:].tolist()
        end_ms = int(aggs.time_us[100]) // 1000
        _, up_to_end, _ = await raw.get("/api/v3/aggTrades", symbol=SYMBOL, endTime=end_ms, limit=5)
        expected = aggs.agg_trade_id[aggs.time_us // 1000 <= end_ms][-5:].tolist()
        assert [row["a"] for row in up_to_end] == expected
        _, oldest, _ = await raw.get(
            "/api/v3/aggTrades", symbol=SYMBOL, startTime=int(aggs.time_us[0]) // 1000, limit=2
        )
        assert [row["a"] for row in oldest] == [first + 3, first + 4]


async def test_exchange_info_reports_the_weight_limit_the_exchange_enforces() -> None:
    async with capture_exchange(weight_limit=1200) as exchange, raw_client(exchange) as raw:
        _, info, _ = await raw.get("/api/v3/exchangeInfo")
        weight = next(r for r in info["rateLimits"] if r["rateLimitType"] == "REQUEST_WEIGHT")
        assert weight["limit"] == 1200


# -- archive files of the generated market ---------------------------------------------------

GENERATED_DAY = dt.date(2026, 1, 1)
GENERATED_START_US = 1_767_311_400_000_000  # 2026-01-01T23:50:00Z
NEXT_MIDNIGHT_US = 1_767_312_000_000_000  # 2026-01-02T00:00:00Z


@contextlib.asynccontextmanager
async def generated_exchange(history_s: float = 15 * 60) -> AsyncIterator[LocalExchange]:
    """Seeded market from 23:50 as history; with 15 minutes of it, 2026-01-01 has ended."""
    source = MarketModel(MarketParams(seed=21, start_time_us=GENERATED_START_US))
    config = ExchangeConfig(speed=0, history_s=history_s, weight_limit=None)
    async with LocalExchange(source, config, VirtualClock(MINUTE_START_S)) as exchange:
        yield exchange


async def test_generated_day_files_verify_and_equal_rest(tmp_path: Path) -> None:
    async with (
        generated_exchange() as exchange,
        ArchiveClient(exchange.archive_url) as archive,
        BinanceRestClient(exchange.rest_url, clock=VirtualClock()) as client,
    ):
        assert exchange.status()["archive_days"] == [GENERATED_DAY.isoformat()]
        files = {
            kind: ArchiveFile.daily(kind, GENERATED_DAY, interval=interval)
            for kind, interval in [("aggTrades", None), ("trades", None), ("klines", "1m")]
        }
        paths = {kind: await archive.download(file, tmp_path) for kind, file in files.items()}
        for kind, path in paths.items():
            published = await archive.fetch_checksum(files[kind])
            assert verify_checksum(path, path.with_name(path.name + ".CHECKSUM")) == published
        aggs = [
            agg
            async for page in AggTradePager(
                client,
                SYMBOL,
                start_time_us=GENERATED_START_US,
                end_time_us=NEXT_MIDNIGHT_US - 1,
            )
            for agg in page
        ]
        trades = []
        next_id = aggs[0].first_trade_id
        while next_id <= aggs[-1].last_trade_id:
            page = await client.historical_trades(SYMBOL, from_id=next_id, limit=1000)
            trades += [t for t in page if t.trade_id <= aggs[-1].last_trade_id]
            next_id = page[-1].trade_id + 1
        klines = await client.klines(
            SYMBOL, "1m", GENERATED_START_US, NEXT_MIDNIGHT_US - 1, limit=1000
        )

    agg_table = read_table(paths["aggTrades"], "aggTrades")
    assert len(aggs) > 500
    assert agg_table.num_rows == len(aggs)
    # µs archive (2026): exact times, sub-millisecond parts included.
    assert agg_table.to_pylist() == [
        {
            "agg_trade_id": a.agg_trade_id,
            "price_e8": a.price_e8,
            "qty_e8": a.qty_e8,
            "first_trade_id": a.first_trade_id,
            "last_trade_id": a.last_trade_id,
            "transact_time": dt.datetime.fromtimestamp(a.transact_time_us / 1e6, dt.UTC),
            "is_buyer_maker": a.is_buyer_maker,
            "is_best_match": True,
        }
        for a in aggs
    ]
    assert any(a.transact_time_us % 1000 for a in aggs)

    trade_table = read_table(paths["trades"], "trades")
    assert trade_table["trade_id"].to_pylist() == [t.trade_id for t in trades]
    assert trade_table["price_e8"].to_pylist() == [t.price_e8 for t in trades]
    assert trade_table["qty_e8"].to_pylist() == [t.qty_e8 for t in trades]
    assert trade_table["transact_time"].cast("int64").to_pylist() == [
        t.transact_time_us for t in trades
    ]
    assert trade_table["is_buyer_maker"].to_pylist() == [t.is_buyer_maker for t in trades]

    kline_table = read_table(paths["klines"], "klines")
    opens = kline_table["open_time"].cast("int64").to_pylist()
    assert opens[0] == GENERATED_START_US
    assert opens[-1] == NEXT_MIDNIGHT_US - MINUTE_US
    assert kline_table.equals(klines)
    assert sum(kline_table["trade_count"].to_pylist()) == len(trades)


async def test_generated_archive_errors(tmp_path: Path) -> None:
    async with generated_exchange() as exchange, ArchiveClient(exchange.archive_url) as archive:
        fault = {"fault": "corrupt_archive", "kind": "aggTrades", "date": "2026-01-01"}
        assert (await post_fault(exchange, fault))[0] == 200
        with pytest.raises(ChecksumMismatch):
            await archive.download(ArchiveFile.daily("aggTrades", GENERATED_DAY), tmp_path)
        assert not (tmp_path / "BTCUSDT-aggTrades-2026-01-01.zip").exists()
        # Only that file is corrupted; the trades file of the same day is fine.
        await archive.download(ArchiveFile.daily("trades", GENERATED_DAY), tmp_path)
        assert await delete_faults(exchange) == 200
        await archive.download(ArchiveFile.daily("aggTrades", GENERATED_DAY), tmp_path)

        # The day in progress and the day before the market have no file.
        for day in (GENERATED_DAY + dt.timedelta(days=1), GENERATED_DAY - dt.timedelta(days=1)):
            with pytest.raises(ArchiveNotFound):
                await archive.download(ArchiveFile.daily("aggTrades", day), tmp_path)


async def test_time_bounds_in_us_keep_their_sub_millisecond_part() -> None:
    async with generated_exchange(history_s=60) as exchange, raw_client(exchange) as raw:
        aggs = exchange.market.tape.agg_trades()
        times = aggs.time_us
        pick = next(i for i in range(len(times) // 2, len(times)) if times[i] % 1000)
        start_us = int(times[pick])
        end_us = int(times[pick + 20])

        async def ids(start: int, end: int) -> list[int]:
            _, rows, _ = await raw.get(
                "/api/v3/aggTrades", MICROS, symbol=SYMBOL, startTime=start, endTime=end
            )
            return [row["a"] for row in rows]

        def expected(start: int, end: int) -> list[int]:
            return aggs.agg_trade_id[(times >= start) & (times <= end)].tolist()

        in_us = await ids(start_us, end_us)
        assert in_us == expected(start_us, end_us)
        assert in_us[0] == int(aggs.agg_trade_id[pick])
        # The same bounds in ms are those milliseconds' first microseconds.
        in_ms = await ids(start_us // 1000, end_us // 1000)
        assert in_ms == expected(start_us // 1000 * 1000, end_us // 1000 * 1000)
        assert in_ms != in_us
