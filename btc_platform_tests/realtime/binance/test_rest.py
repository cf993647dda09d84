"""The REST client and the aggTrades pager against a local Binance-like HTTP server.

The server is real aiohttp over TCP on 127.0.0.1; only time is virtual. Server and client
share one ``VirtualClock``, so the server's calendar-minute weight count, Retry-After waits
and backoff all run in zero real time, and the recorded sleeps are the evidence.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import math
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict

from realtime.binance.errors import (
    AggTradeGap,
    BinanceApiError,
    IpBanned,
    MalformedResponse,
    RateLimited,
    RequestTimeout,
    ServerError,
    TransportError,
)
from realtime.binance.rate_budget import RateBudget
from realtime.binance.rest import (
    AggTradePager,
    BinanceRestClient,
    RetryPolicy,
    depth_weight,
)
from realtime.clock import VirtualClock
from realtime.market import arrow_schemas
from realtime.market.events import AggTrade, DepthSnapshot, Trade
from realtime.market.fixed_point import format_e8, parse_e8

SYMBOL = "BTCUSDT"
N_TRADES = 5_500
FIRST_ID = 1_000_000
T0_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
API_KEY = "test-api-key-0123456789"
USED_WEIGHT = "X-MBX-USED-WEIGHT-1M"
FAULT_KEY = web.RequestKey("fault", object)

WEIGHTS = {
    "/api/v3/aggTrades": 4,
    "/api/v3/trades": 25,
    "/api/v3/historicalTrades": 25,
    "/api/v3/klines": 2,
    "/api/v3/exchangeInfo": 20,
    "/api/v3/ping": 1,
    "/api/v3/time": 1,
}


def make_agg_trades(n: int, first_id: int = FIRST_ID) -> list[AggTrade]:
    """Deterministic aggregate trades; pairs share a time, and times have sub-ms parts."""
    return [
        AggTrade(
            symbol=SYMBOL,
            agg_trade_id=first_id + i,
            price_e8=9_000_000_000_000 + (i * 7919 % 100_000) * 1_000_000,
            qty_e8=1 + (i * 104_729 % 10**9),
            first_trade_id=5_000_000 + 2 * i,
            last_trade_id=5_000_000 + 2 * i + i % 2,
            transact_time_us=T0_US + (i // 2) * 10_250,
            is_buyer_maker=i % 3 == 0,
            is_best_match=True,
        )
        for i in range(n)
    ]


@dataclass
class Fault:
    """What the server does instead of (or to) a normal answer.

    ``after_ok`` normal requests are served first; then ``times`` requests get the fault
    (``None``: until ``server.faults`` is cleared).
    """

    kind: str  # 429, 418, 500, 403, drop, hang, malformed, bad_price, overlap, skip
    after_ok: int = 0
    times: int | None = 1
    retry_after: str | None = None
    k: int = 0  # overlap: rows to step back; skip: index of the row to leave out


@dataclass
class Seen:
    path: str
    query: dict[str, str]
    headers: CIMultiDict[str]
    at: float  # virtual monotonic time of arrival


@dataclass
class FakeBinance:
    """A small Binance: aggTrades exactly as documented, other endpoints just enough."""

    clock: VirtualClock
    trades: list[AggTrade]
    faults: list[Fault] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    used_weight: int = 0
    ignore_time_unit: bool = False
    base_url: str = ""
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self._minute = self._current_minute()

    @property
    def agg_requests(self) -> list[Seen]:
        return [s for s in self.seen if s.path == "/api/v3/aggTrades"]

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/api/v3/aggTrades", self._agg_trades)
        app.router.add_get("/api/v3/trades", self._trades)
        app.router.add_get("/api/v3/historicalTrades", self._trades)
        app.router.add_get("/api/v3/klines", self._klines)
        app.router.add_get("/api/v3/depth", self._depth)
        app.router.add_get("/api/v3/time", self._time)
        app.router.add_get("/api/v3/ping", self._ping)
        app.router.add_get("/api/v3/exchangeInfo", self._exchange_info)
        return app

    def _current_minute(self) -> int:
        return math.floor(self.clock.time() / 60)

    def _take_fault(self) -> Fault | None:
        if not self.faults:
            return None
        fault = self.faults[0]
        if fault.after_ok > 0:
            fault.after_ok -= 1
            return None
        if fault.times is not None:
            fault.times -= 1
            if fault.times == 0:
                self.faults.pop(0)
        return fault

    def _micro(self, request: web.Request) -> bool:
        unit = request.headers.get("X-MBX-TIME-UNIT", "")
        return unit.upper() == "MICROSECOND" and not self.ignore_time_unit

    def _out_time(self, request: web.Request, time_us: int) -> int:
        return time_us if self._micro(request) else time_us // 1000

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.seen.append(
            Seen(request.path, dict(request.query), request.headers.copy(), self.clock.monotonic())
        )
        fault = self._take_fault()
        kind = fault.kind if fault else None
        if kind == "drop":
            request.transport.close()
            return web.Response()
        if kind == "hang":
            await self.release.wait()
        minute = self._current_minute()
        if minute != self._minute:
            self._minute, self.used_weight = minute, 0
        if request.path == "/api/v3/depth":
            self.used_weight += depth_weight(int(request.query.get("limit", 100)))
        else:
            self.used_weight += WEIGHTS.get(request.path, 1)
        headers = {USED_WEIGHT: str(self.used_weight)}
        if kind in ("429", "418"):
            if fault and fault.retry_after is not None:
                headers["Retry-After"] = fault.retry_after
            body = {"code": -1003, "msg": "Too much request weight used; banned until later."}
            return web.json_response(body, status=int(kind), headers=headers)
        if kind == "500":
            body = {"code": -1000, "msg": "An unknown error occurred while processing the request."}
            return web.json_response(body, status=500, headers=headers)
        if kind == "403":
            return web.Response(text="<html>403 Forbidden</html>", status=403, headers=headers)
        if kind == "malformed":
            return web.Response(
                body=b'[{"a": 1000000, "p": "90000.0', content_type="application/json"
            )
        request[FAULT_KEY] = fault
        response = await handler(request)
        response.headers[USED_WEIGHT] = str(self.used_weight)
        return response

    async def _agg_trades(self, request: web.Request) -> web.Response:
        query = request.query
        if query.get("symbol") != SYMBOL:
            return web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)
        limit = int(query.get("limit", 500))
        if not 1 <= limit <= 1000:
            return web.json_response(
                {"code": -1130, "msg": "Data sent for parameter 'limit' is not valid."}, status=400
            )
        by_time = "startTime" in query or "endTime" in query
        if "fromId" in query and by_time:
            return web.json_response(
                {"code": -1128, "msg": "Combination of optional parameters invalid."}, status=400
            )
        fault = request[FAULT_KEY]
        assert fault is None or isinstance(fault, Fault)
        times = [t.transact_time_us for t in self.trades]
        end = len(self.trades)
        if "endTime" in query:
            end = bisect.bisect_right(times, _param_us(query["endTime"]))
        if "fromId" in query:
            start = max(0, int(query["fromId"]) - self.trades[0].agg_trade_id)
            if fault and fault.kind == "overlap":
                start = max(0, start - fault.k)
        elif "startTime" in query:
            start = bisect.bisect_left(times, _param_us(query["startTime"]))
        else:
            start = max(0, end - limit)  # no start: the newest `limit` up to endTime
        rows = self.trades[start : min(end, start + limit)]
        if fault and fault.kind == "skip":
            rows = rows[: fault.k] + rows[fault.k + 1 :]
        body: list[dict[str, Any]] = [
            {
                "a": t.agg_trade_id,
                "p": format_e8(t.price_e8),
                "q": format_e8(t.qty_e8),
                "f": t.first_trade_id,
                "l": t.last_trade_id,
                "T": self._out_time(request, t.transact_time_us),
                "m": t.is_buyer_maker,
                "M": t.is_best_match,
            }
            for t in rows
        ]
        if fault and fault.kind == "bad_price" and len(body) > 3:
            body[3]["p"] = 90000.5  # a JSON number: would have gone through float
        return web.json_response(body)

    async def _trades(self, request: web.Request) -> web.Response:
        from_id = int(request.query.get("fromId", 700))
        limit = int(request.query.get("limit", 500))
        body = [
            {
                "id": trade_id,
                "price": "90000.01000000",
                "qty": "0.00012000",
                "quoteQty": "10.80001200",
                "time": self._out_time(request, T0_US + 1_500 * trade_id),
                "isBuyerMaker": trade_id % 2 == 0,
                "isBestMatch": True,
            }
            for trade_id in range(from_id, from_id + min(limit, 3))
        ]
        return web.json_response(body)

    async def _klines(self, request: web.Request) -> web.Response:
        if request.query.get("interval") != "1m":
            return web.json_response({"code": -1120, "msg": "Invalid interval."}, status=400)
        open_us = T0_US
        body = [
            [
                self._out_time(request, open_us + i * 60_000_000),
                "90000.00000000",
                "90100.50000000",
                "89999.99000000",
                "90050.00000000",
                f"{1234 + i}.12345678",
                self._out_time(request, open_us + (i + 1) * 60_000_000 - 1_000),
                "123456789012345.12345678",  # e8 mantissa ~1.2e22 > int64
                1_000_000 + i,
                "600.00000001",
                "54000000.10000000",
                "0",
            ]
            for i in range(3)
        ]
        return web.json_response(body)

    async def _depth(self, request: web.Request) -> web.Response:
        steps = [i * 1_000_000 for i in range(min(int(request.query.get("limit", 100)), 3))]
        bids = [[format_e8(9_000_000_000_000 - step), "0.50000000"] for step in steps]
        asks = [[format_e8(9_000_001_000_000 + step), "1.25000000"] for step in steps]
        return web.json_response({"lastUpdateId": 73_000_000_001, "bids": bids, "asks": asks})

    async def _time(self, request: web.Request) -> web.Response:
        return web.json_response({"serverTime": self._out_time(request, T0_US + 123_456)})

    async def _ping(self, request: web.Request) -> web.Response:
        return web.json_response({})

    async def _exchange_info(self, request: web.Request) -> web.Response:
        symbol = {
            "symbol": SYMBOL,
            "status": "TRADING",
            "filters": [{"filterType": "PRICE_FILTER", "tickSize": "0.01000000"}],
        }
        return web.json_response(
            {
                "timezone": "UTC",
                "serverTime": self._out_time(request, T0_US),
                "rateLimits": [
                    {
                        "rateLimitType": "REQUEST_WEIGHT",
                        "interval": "MINUTE",
                        "intervalNum": 1,
                        "limit": 6000,
                    }
                ],
                "symbols": [symbol],
            }
        )


def _param_us(text: str) -> int:
    value = int(text)
    return value if value >= 10**14 else value * 1000


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
async def server(clock: VirtualClock) -> AsyncIterator[FakeBinance]:
    fake = FakeBinance(clock, make_agg_trades(N_TRADES))
    runner = web.AppRunner(fake.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    fake.base_url = f"http://{host}:{port}"
    yield fake
    fake.release.set()
    await runner.cleanup()


def make_client(server: FakeBinance, clock: VirtualClock, **kwargs: Any) -> BinanceRestClient:
    kwargs.setdefault("retry", RetryPolicy(max_attempts=3, base_delay_s=0.5, max_delay_s=4.0))
    return BinanceRestClient(server.base_url, clock=clock, rng=random.Random(1234), **kwargs)


@pytest.fixture
async def client(server: FakeBinance, clock: VirtualClock) -> AsyncIterator[BinanceRestClient]:
    async with make_client(server, clock) as rest:
        yield rest


async def walk(pager: AggTradePager) -> list[list[AggTrade]]:
    return [page async for page in pager]


async def collect(pager: AggTradePager, pages: list[list[AggTrade]]) -> None:
    """Append pages as they come, so the pages before an exception are kept."""
    while True:
        try:
            page = await anext(pager)
        except StopAsyncIteration:
            return
        pages.append(page)


def ids_of(pages: list[list[AggTrade]]) -> list[int]:
    return [t.agg_trade_id for page in pages for t in page]


# -- the pager -------------------------------------------------------------------------------


async def test_pager_walks_from_first_id_to_the_end(client, server):
    pages = await walk(AggTradePager(client, SYMBOL, from_id=FIRST_ID))

    assert [t for page in pages for t in page] == server.trades  # exact values, not only ids
    assert ids_of(pages) == list(range(FIRST_ID, FIRST_ID + N_TRADES))
    assert all(1 <= len(page) <= 1000 for page in pages)
    assert [len(p) for p in pages] == [1000] * 5 + [500]  # the short page means caught up
    assert len(server.agg_requests) == 6
    assert all(s.query["limit"] == "1000" for s in server.agg_requests)


async def test_pager_stops_at_end_id_inclusive_without_extra_requests(client, server):
    start, end = FIRST_ID + 10, FIRST_ID + 2_500
    pager = AggTradePager(client, SYMBOL, from_id=start, end_id=end)
    pages = await walk(pager)

    assert ids_of(pages) == list(range(start, end + 1))
    assert [len(p) for p in pages] == [1000, 1000, 491]
    assert pager.next_id == end + 1
    assert len(server.agg_requests) == 3


async def test_pager_stops_at_end_time_inclusive(client, server):
    # Trades 2998 and 2999 share a time: an inclusive end must keep both.
    end_time_us = server.trades[2_998].transact_time_us
    assert server.trades[2_999].transact_time_us == end_time_us
    pages = await walk(AggTradePager(client, SYMBOL, from_id=FIRST_ID, end_time_us=end_time_us))

    assert ids_of(pages) == list(range(FIRST_ID, FIRST_ID + 3_000))
    assert max(t.transact_time_us for page in pages for t in page) == end_time_us


async def test_pager_stops_when_caught_up_and_a_new_pager_continues(client, server):
    pager = AggTradePager(client, SYMBOL, from_id=FIRST_ID + 5_000)
    first = await walk(pager)
    assert ids_of(first) == list(range(FIRST_ID + 5_000, FIRST_ID + N_TRADES))
    assert pager.done
    assert len(server.agg_requests) == 1

    server.trades.extend(make_agg_trades(1_200, first_id=FIRST_ID + N_TRADES))  # the market moved
    later = await walk(AggTradePager(client, SYMBOL, from_id=pager.next_id))
    assert ids_of(later) == list(range(FIRST_ID + N_TRADES, FIRST_ID + N_TRADES + 1_200))


async def test_pager_starts_from_a_time_then_pages_by_id(client, server):
    # Trades 1234 and 1235 share a time: the first trade at/after it is 1234.
    start_time_us = server.trades[1_235].transact_time_us
    end_time_us = server.trades[4_000].transact_time_us
    pager = AggTradePager(client, SYMBOL, start_time_us=start_time_us, end_time_us=end_time_us)
    pages = await walk(pager)

    assert ids_of(pages) == list(range(FIRST_ID + 1_234, FIRST_ID + 4_002))
    first, *rest = server.agg_requests
    assert first.query["startTime"] == str(start_time_us)
    assert "fromId" not in first.query
    assert all("fromId" in s.query and "startTime" not in s.query for s in rest)


@pytest.mark.parametrize(("kind", "error"), [("500", ServerError), ("drop", TransportError)])
async def test_pager_resumes_after_an_interruption_without_gap_or_duplicate(
    client, server, clock, kind, error
):
    server.faults.append(Fault(kind, after_ok=2, times=None))  # fails until cleared
    pager = AggTradePager(client, SYMBOL, from_id=FIRST_ID)
    first_run: list[list[AggTrade]] = []
    with pytest.raises(error):
        await collect(pager, first_run)

    assert ids_of(first_run) == list(range(FIRST_ID, FIRST_ID + 2_000))
    assert pager.next_id == FIRST_ID + 2_000
    # Two backoffs (3 attempts), each within its full-jitter ceiling 0.5 s * 2**retry.
    assert len(clock.sleeps) == 2
    assert all(0.0 <= s <= 0.5 * 2**i for i, s in enumerate(clock.sleeps))

    server.faults.clear()
    second_run = await walk(AggTradePager(client, SYMBOL, from_id=pager.next_id))
    both = ids_of(first_run) + ids_of(second_run)
    assert both == list(range(FIRST_ID, FIRST_ID + N_TRADES))  # no gap, no duplicate


async def test_pager_drops_ids_of_an_overlapping_page(client, server):
    server.faults.append(Fault("overlap", after_ok=1, k=5))
    pages = await walk(AggTradePager(client, SYMBOL, from_id=FIRST_ID))

    assert ids_of(pages) == list(range(FIRST_ID, FIRST_ID + N_TRADES))
    assert len(pages[1]) == 995  # the server repeated 5 ids already yielded
    assert pages[1][0].agg_trade_id == FIRST_ID + 1_000


async def test_pager_raises_on_a_skipped_id(client, server):
    server.faults.append(Fault("skip", after_ok=1, k=10))
    pager = AggTradePager(client, SYMBOL, from_id=FIRST_ID)
    pages: list[list[AggTrade]] = []
    with pytest.raises(AggTradeGap) as caught:
        await collect(pager, pages)

    assert (caught.value.expected_id, caught.value.got_id) == (FIRST_ID + 1_010, FIRST_ID + 1_011)
    assert ids_of(pages) == list(range(FIRST_ID, FIRST_ID + 1_000))
    assert pager.next_id == FIRST_ID + 1_000  # nothing of the broken page was handed out


async def test_pager_records_a_skipped_id_and_walks_on_when_asked(client, server):
    server.faults.append(Fault("skip", after_ok=1, k=10))
    pager = AggTradePager(client, SYMBOL, from_id=FIRST_ID, record_gaps=True)
    pages: list[list[AggTrade]] = []
    await collect(pager, pages)

    missing = FIRST_ID + 1_010
    assert pager.gaps == [(missing, missing)]
    # The page with the hole is one row short, which reads as caught up: the walk ends there.
    expected = [i for i in range(FIRST_ID, FIRST_ID + 2_000) if i != missing]
    assert ids_of(pages) == expected


# -- rate limits -----------------------------------------------------------------------------


async def test_429_waits_out_retry_after_then_succeeds(client, server, clock):
    server.faults.append(Fault("429", retry_after="7"))
    trades = await client.agg_trades(SYMBOL, from_id=FIRST_ID)

    assert [t.agg_trade_id for t in trades] == list(range(FIRST_ID, FIRST_ID + 1000))
    assert clock.sleeps == [7.0]
    rejected, retried = server.agg_requests
    assert retried.at - rejected.at >= 7.0  # never earlier than Retry-After
    assert client.budget.blocked_until == rejected.at + 7.0


async def test_418_waits_out_the_ban_then_succeeds(client, server, clock):
    server.faults.append(Fault("418", retry_after="120"))
    depth = await client.depth(SYMBOL, limit=5)

    assert depth.last_update_id == 73_000_000_001
    assert clock.sleeps == [120.0]
    rejected, retried = server.seen
    assert retried.at - rejected.at >= 120.0


async def test_a_long_ban_is_raised_and_holds_every_client_of_the_budget(server, clock):
    budget = RateBudget(clock)
    server.faults.append(Fault("418", retry_after="86400"))
    async with (
        make_client(server, clock, budget=budget) as first,
        make_client(server, clock, budget=budget) as second,
    ):
        with pytest.raises(IpBanned) as caught:
            await first.ping()
        assert caught.value.retry_after_s == 86_400
        assert len(server.seen) == 1  # not retried: longer than max_retry_after_s

        await second.ping()  # a different client, same IP budget
    assert clock.sleeps == [86_400.0]
    assert server.seen[1].at - server.seen[0].at >= 86_400


async def test_429_on_every_attempt_raises_rate_limited(client, server, clock):
    server.faults.append(Fault("429", retry_after="3", times=None))
    with pytest.raises(RateLimited) as caught:
        await client.ping()
    assert caught.value.retry_after_s == 3
    assert len(server.seen) == 3
    assert clock.sleeps == [3.0, 3.0]


async def test_budget_weight_equals_the_servers_used_weight_header(client, server):
    for n in range(7):
        await client.agg_trades(SYMBOL, from_id=FIRST_ID + n * 1000, limit=1000)

    assert server.used_weight == 28  # 7 requests x weight 4
    assert client.budget.used_weight == 28
    assert client.budget.requests == 7


async def test_server_header_overrides_the_local_count(client, server):
    server.used_weight = 3_000  # other processes on the same IP
    await client.ping()
    assert client.budget.used_weight == 3_001


async def test_budget_throttles_to_the_next_minute_like_the_server(server, clock):
    budget = RateBudget(clock, limit=20, safety_margin=0.0)
    async with make_client(server, clock, budget=budget) as rest:
        for n in range(6):
            await rest.agg_trades(SYMBOL, from_id=FIRST_ID + n, limit=1)

    # 5 x 4 fills the minute; the 6th waits for the next calendar minute.
    assert clock.sleeps == [60.0 - 1_700_000_000.0 % 60.0]
    assert budget.waits == 1
    assert budget.used_weight == server.used_weight == 4


@pytest.mark.parametrize("limit", [5, 100, 101, 500, 501, 1000, 1001, 5000])
async def test_depth_weight_follows_the_limit_bracket(client, server, limit):
    snapshot = await client.depth(SYMBOL, limit=limit)
    assert isinstance(snapshot, DepthSnapshot)
    expected = {5: 5, 100: 5, 101: 25, 500: 25, 501: 50, 1000: 50, 1001: 250, 5000: 250}[limit]
    assert server.used_weight == client.budget.used_weight == expected


# -- errors ----------------------------------------------------------------------------------


async def test_4xx_body_becomes_binance_api_error_without_retry(client, server, clock):
    with pytest.raises(BinanceApiError) as caught:
        await client.agg_trades("nopeusdt", from_id=FIRST_ID)
    assert (caught.value.status, caught.value.code, caught.value.msg) == (
        400,
        -1121,
        "Invalid symbol.",
    )
    assert len(server.seen) == 1
    assert clock.sleeps == []


async def test_a_non_json_4xx_keeps_the_text(client, server):
    server.faults.append(Fault("403"))
    with pytest.raises(BinanceApiError) as caught:
        await client.ping()
    assert (caught.value.status, caught.value.code) == (403, None)
    assert "Forbidden" in caught.value.msg


async def test_malformed_json_is_a_typed_error_with_context(client, server):
    server.faults.append(Fault("malformed"))
    with pytest.raises(MalformedResponse) as caught:
        await client.agg_trades(SYMBOL, from_id=FIRST_ID)
    assert caught.value.path == "/api/v3/aggTrades"
    assert "invalid JSON" in caught.value.detail
    assert caught.value.excerpt.startswith('[{"a": 1000000')
    assert len(server.seen) == 1


async def test_a_price_that_is_not_a_decimal_string_is_malformed(client, server):
    server.faults.append(Fault("bad_price"))
    with pytest.raises(MalformedResponse, match="row 3"):
        await client.agg_trades(SYMBOL, from_id=FIRST_ID)


async def test_server_errors_are_retried_with_jittered_backoff(client, server, clock):
    server.faults.append(Fault("500", times=2))
    assert await client.server_time_us() == T0_US + 123_456
    assert len(server.seen) == 3
    assert len(clock.sleeps) == 2
    assert 0.0 <= clock.sleeps[0] <= 0.5
    assert 0.0 <= clock.sleeps[1] <= 1.0


async def test_a_hanging_server_raises_request_timeout(server, clock):
    server.faults.append(Fault("hang", times=None))
    retry = RetryPolicy(max_attempts=2)
    async with make_client(server, clock, timeout_s=0.05, retry=retry) as rest:
        with pytest.raises(RequestTimeout):
            await rest.ping()
    assert len(server.seen) == 2


def test_full_jitter_stays_under_the_capped_ceiling():
    policy = RetryPolicy(base_delay_s=0.5, max_delay_s=8.0)
    rng = random.Random(7)
    for retry in range(10):
        ceiling = min(8.0, 0.5 * 2**retry)
        delays = [policy.backoff_s(retry, rng) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in delays)
        assert max(delays) > 0.8 * ceiling  # full jitter spreads over the whole range


# -- headers and time units ------------------------------------------------------------------


async def test_times_are_microseconds_whether_or_not_the_header_is_honoured(client, server):
    micro = await client.agg_trades(SYMBOL, from_id=FIRST_ID, limit=6)
    assert micro == server.trades[:6]  # sub-millisecond parts kept
    assert server.seen[0].headers["X-MBX-TIME-UNIT"] == "MICROSECOND"

    server.ignore_time_unit = True  # an old server answers in ms
    milli = await client.agg_trades(SYMBOL, from_id=FIRST_ID, limit=6)
    assert [t.transact_time_us for t in milli] == [
        t.transact_time_us // 1000 * 1000 for t in server.trades[:6]
    ]
    assert await client.server_time_us() == (T0_US + 123_456) // 1000 * 1000


async def test_api_key_is_sent_as_header_and_never_logged(server, clock, caplog):
    caplog.set_level(logging.DEBUG)
    server.faults.append(Fault("500", times=None))
    async with make_client(server, clock, api_key=API_KEY) as rest:
        with pytest.raises(ServerError):
            await rest.historical_trades(SYMBOL, from_id=700)
        assert API_KEY not in repr(rest)
    assert all(s.headers["X-MBX-APIKEY"] == API_KEY for s in server.seen)
    assert "retry" in caplog.text
    assert API_KEY not in caplog.text


async def test_no_api_key_header_without_a_key(client, server):
    await client.ping()
    assert "X-MBX-APIKEY" not in server.seen[0].headers


async def test_fromid_and_time_together_are_refused_locally(client, server):
    with pytest.raises(ValueError, match="not both"):
        await client.agg_trades(SYMBOL, from_id=FIRST_ID, start_time_us=T0_US)
    assert server.seen == []


# -- other endpoints -------------------------------------------------------------------------


async def test_depth_parses_levels_as_e8_best_first(client):
    snapshot = await client.depth("btcusdt", limit=5)
    assert snapshot == DepthSnapshot(
        symbol=SYMBOL,
        event_time_us=None,
        last_update_id=73_000_000_001,
        bids=(
            (9_000_000_000_000, 50_000_000),
            (8_999_999_000_000, 50_000_000),
            (8_999_998_000_000, 50_000_000),
        ),
        asks=(
            (9_000_001_000_000, 125_000_000),
            (9_000_002_000_000, 125_000_000),
            (9_000_003_000_000, 125_000_000),
        ),
    )


async def test_klines_table_has_the_shared_schema_and_exact_volumes(client, server):
    table = await client.klines(SYMBOL, "1m", start_time_us=T0_US, limit=3)

    assert table.schema == arrow_schemas.KLINES
    assert table.num_rows == 3
    assert server.seen[0].query["startTime"] == str(T0_US)
    row = table.slice(1, 1).to_pylist()[0]
    assert table.column("open_time")[1].value == T0_US + 60_000_000
    assert row["open_e8"] == parse_e8("90000.00000000")
    assert row["high_e8"] == 9_010_050_000_000
    assert row["volume"] == Decimal("1235.12345678")
    assert row["quote_volume"] == Decimal("123456789012345.12345678")  # beyond int64 at e8
    assert row["trade_count"] == 1_000_001
    assert row["taker_buy_base_volume"] == Decimal("600.00000001")
    assert table.column("close_time")[0].value == T0_US + 60_000_000 - 1_000


async def test_klines_error_for_an_unknown_interval(client):
    with pytest.raises(BinanceApiError) as caught:
        await client.klines(SYMBOL, "7m")
    assert caught.value.code == -1120


async def test_historical_trades_and_trades_parse_to_trade_events(client, server):
    historical = await client.historical_trades(SYMBOL, from_id=700, limit=3)
    assert historical[0] == Trade(
        symbol=SYMBOL,
        trade_id=700,
        price_e8=9_000_001_000_000,
        qty_e8=12_000,
        is_buyer_maker=True,
        transact_time_us=T0_US + 1_050_000,
        event_time_us=T0_US + 1_050_000,
        is_best_match=True,
    )
    assert [t.trade_id for t in historical] == [700, 701, 702]
    recent = await client.trades(SYMBOL, limit=3)
    assert all(isinstance(t, Trade) for t in recent)
    assert [s.path for s in server.seen] == ["/api/v3/historicalTrades", "/api/v3/trades"]
    assert server.used_weight == 50


async def test_exchange_info_time_and_ping(client, server):
    info = await client.exchange_info("btcusdt")
    assert info["symbols"][0]["symbol"] == SYMBOL
    assert info["rateLimits"][0]["limit"] == 6000
    assert server.seen[0].query == {"symbol": SYMBOL}
    assert await client.server_time_us() == T0_US + 123_456
    assert await client.ping() is None
    assert server.used_weight == 22


async def test_a_passed_in_session_is_left_open(server, clock):
    async with aiohttp.ClientSession() as session:
        async with make_client(server, clock, session=session) as rest:
            await rest.ping()
        assert not session.closed
