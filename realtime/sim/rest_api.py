"""The local exchange's HTTP side: Binance's ``/api/v3`` market-data JSON and the archive files.

Answers are shaped exactly as Binance's: decimal strings with 8 decimals, times in ms unless
the request says ``X-MBX-TIME-UNIT: MICROSECOND``, ``X-MBX-USED-WEIGHT-1M`` on every reply,
``{"code": ..., "msg": ...}`` errors. Time parameters may be ms or µs (Binance accepts both).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
from aiohttp import web

from realtime.binance.rest import (
    MAX_DEPTH_LIMIT,
    MAX_LIMIT,
    USED_WEIGHT_HEADER,
    WEIGHT_AGG_TRADES,
    WEIGHT_EXCHANGE_INFO,
    WEIGHT_HISTORICAL_TRADES,
    WEIGHT_KLINES,
    WEIGHT_PING,
    WEIGHT_TIME,
    WEIGHT_TRADES,
    depth_weight,
)
from realtime.market.fixed_point import epoch_to_us, format_e8
from realtime.market.quote_qty import quote_qty_e8
from realtime.sim import archive_files
from realtime.sim.market_state import US_PER_DAY, MarketState
from realtime.sim.request_limits import RequestLimiter

log = logging.getLogger(__name__)

KLINE_INTERVALS_US = {
    "1s": 1_000_000,
    "1m": 60_000_000,
    "3m": 180_000_000,
    "5m": 300_000_000,
    "15m": 900_000_000,
    "30m": 1_800_000_000,
    "1h": 3_600_000_000,
    "2h": 7_200_000_000,
    "4h": 14_400_000_000,
    "6h": 21_600_000_000,
    "8h": 28_800_000_000,
    "12h": 43_200_000_000,
    "1d": US_PER_DAY,
}
"""Fixed-length intervals; ``3d``, ``1w`` and ``1M`` (calendar-aligned) are not served."""

_ARCHIVE_PATH = re.compile(
    r"^/data/spot/daily/(?P<kind>aggTrades|trades|klines)/(?P<symbol>[A-Z0-9]+)/"
    r"(?:(?P<interval>[0-9]+[smhd])/)?(?P<name>[A-Z0-9]+-[A-Za-z0-9]+-\d{4}-\d{2}-\d{2}\.zip)"
    r"(?P<checksum>\.CHECKSUM)?$"
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """A Binance-style error reply: HTTP status, Binance error code, message."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


class RestApi:
    """Route handlers over one ``MarketState`` and one ``RequestLimiter``."""

    def __init__(self, market: MarketState, limiter: RequestLimiter) -> None:
        self.market = market
        self.limiter = limiter
        self.requests = 0
        self.refused = 0
        self._archives: dict[tuple[str, str | None, dt.date], bytes] = {}

    def routes(self) -> list[web.RouteDef]:
        endpoints: list[tuple[str, int | Callable[[web.Request], int], Callable[..., Any]]] = [
            ("/api/v3/aggTrades", WEIGHT_AGG_TRADES, self._agg_trades),
            ("/api/v3/trades", WEIGHT_TRADES, self._trades),
            ("/api/v3/historicalTrades", WEIGHT_HISTORICAL_TRADES, self._historical_trades),
            ("/api/v3/klines", WEIGHT_KLINES, self._klines),
            ("/api/v3/depth", _depth_request_weight, self._depth),
            ("/api/v3/exchangeInfo", WEIGHT_EXCHANGE_INFO, self._exchange_info),
            ("/api/v3/time", WEIGHT_TIME, self._time),
            ("/api/v3/ping", WEIGHT_PING, lambda request, micros: {}),
        ]
        routes = [web.get(path, self._endpoint(weight, body)) for path, weight, body in endpoints]
        routes.append(web.get("/data/spot/daily/{tail:.*}", self._archive))
        return routes

    # -- the common wrapper: weight, forced faults, errors, time unit -------------------------

    def _endpoint(
        self, weight: int | Callable[[web.Request], int], body: Callable[..., Any]
    ) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            self.requests += 1
            ip = request.remote or "local"
            try:
                cost = weight(request) if callable(weight) else weight
            except ApiError as error:
                return _error(error, self.limiter.used_weight(ip))
            forced = self.market.rest_faults.take_forced_status()
            if forced is not None:
                self.refused += 1
                return _limited(
                    forced.status or 429,
                    self.limiter.used_weight(ip),
                    forced.retry_after_s,
                    self.limiter.weight_limit,
                )
            admission = self.limiter.admit(ip, cost)
            if admission.status != 200:
                self.refused += 1
                return _limited(
                    admission.status,
                    admission.used_weight,
                    admission.retry_after_s,
                    self.limiter.weight_limit,
                )
            micros = request.headers.get("X-MBX-TIME-UNIT", "").upper() == "MICROSECOND"
            try:
                payload = body(request, micros)
            except ApiError as error:
                return _error(error, admission.used_weight)
            return web.Response(
                body=json.dumps(payload, separators=(",", ":")),
                content_type="application/json",
                headers={USED_WEIGHT_HEADER: str(admission.used_weight)},
            )

        return handle

    # -- endpoints -----------------------------------------------------------------------------

    def _agg_trades(self, request: web.Request, micros: bool) -> list[dict[str, Any]]:
        self._symbol(request)
        query = request.query
        from_id = _optional_int(query, "fromId")
        start_us = _optional_time(query, "startTime")
        end_us = _optional_time(query, "endTime")
        limit = _limit(query, MAX_LIMIT)
        withheld = self.market.rest_faults.withheld_ranges("agg_trade")
        aggs = self.market.tape.agg_trades_window(
            from_id, start_us, end_us, limit + _span(withheld)
        )
        keep = _outside(aggs.agg_trade_id, withheld)
        # By id or from a start time the page is the oldest rows, else the newest.
        keep = keep[:limit] if from_id is not None or start_us is not None else keep[-limit:]
        a, p, q, f, last, t, m = (column[keep].tolist() for column in aggs)
        return [
            {
                "a": a[i],
                "p": format_e8(p[i]),
                "q": format_e8(q[i]),
                "f": f[i],
                "l": last[i],
                "T": _time_out(t[i], micros),
                "m": m[i],
                "M": True,
            }
            for i in range(len(a))
        ]

    def _trades(self, request: web.Request, micros: bool) -> list[dict[str, Any]]:
        self._symbol(request)
        return self._trade_rows(None, _limit(request.query, MAX_LIMIT), micros)

    def _historical_trades(self, request: web.Request, micros: bool) -> list[dict[str, Any]]:
        self._symbol(request)
        query = request.query
        return self._trade_rows(_optional_int(query, "fromId"), _limit(query, MAX_LIMIT), micros)

    def _trade_rows(self, from_id: int | None, limit: int, micros: bool) -> list[dict[str, Any]]:
        withheld = self.market.rest_faults.withheld_ranges("trade")
        trades = self.market.tape.trades_from(from_id, limit + _span(withheld))
        keep = _outside(trades.trade_id, withheld)
        keep = keep[:limit] if from_id is not None else keep[-limit:]
        trades = trades.take(keep)
        quote = quote_qty_e8(trades.price_e8, trades.qty_e8).tolist()
        ids, prices, qtys, times = (c.tolist() for c in trades[:4])
        makers = trades.is_buyer_maker.tolist()
        return [
            {
                "id": ids[i],
                "price": format_e8(prices[i]),
                "qty": format_e8(qtys[i]),
                "quoteQty": format_e8(quote[i]),
                "time": _time_out(times[i], micros),
                "isBuyerMaker": makers[i],
                "isBestMatch": True,
            }
            for i in range(len(ids))
        ]

    def _klines(self, request: web.Request, micros: bool) -> list[list[Any]]:
        self._symbol(request)
        query = request.query
        interval = query.get("interval")
        if interval not in KLINE_INTERVALS_US:
            raise ApiError(400, -1120, "Invalid interval.")
        klines = self.market.tape.klines(
            KLINE_INTERVALS_US[interval],
            _optional_time(query, "startTime"),
            _optional_time(query, "endTime"),
            _limit(query, MAX_LIMIT, default=500),
            self.market.now_us(),
        )
        columns = [column.tolist() for column in klines]
        return [
            [
                _time_out(row[0], micros),
                format_e8(row[1]),
                format_e8(row[2]),
                format_e8(row[3]),
                format_e8(row[4]),
                format_e8(row[5]),
                _time_out(row[6], micros),
                format_e8(row[7]),
                row[8],
                format_e8(row[9]),
                format_e8(row[10]),
                "0",
            ]
            for row in zip(*columns, strict=True)
        ]

    def _depth(self, request: web.Request, micros: bool) -> dict[str, Any]:
        self._symbol(request)
        limit = _limit(request.query, MAX_DEPTH_LIMIT, default=100, clip=True)
        snapshot = self.market.book.snapshot(limit)
        return {
            "lastUpdateId": snapshot.last_update_id,
            "bids": [[format_e8(p), format_e8(q)] for p, q in snapshot.bids],
            "asks": [[format_e8(p), format_e8(q)] for p, q in snapshot.asks],
        }

    def _exchange_info(self, request: web.Request, micros: bool) -> dict[str, Any]:
        symbol = request.query.get("symbol")
        if symbol is not None and symbol.upper() != self.market.symbol:
            raise ApiError(400, -1121, "Invalid symbol.")
        server_time = _time_out(self.market.now_us(), micros)
        return exchange_info(self.market, server_time, self.limiter.weight_limit or 6000)

    def _time(self, request: web.Request, micros: bool) -> dict[str, Any]:
        return {"serverTime": _time_out(self.market.now_us(), micros)}

    def _symbol(self, request: web.Request) -> None:
        symbol = request.query.get("symbol")
        if symbol is None:
            raise ApiError(400, -1102, "Mandatory parameter 'symbol' was not sent.")
        if symbol.upper() != self.market.symbol:
            raise ApiError(400, -1121, "Invalid symbol.")

    # -- archive files -------------------------------------------------------------------------

    async def _archive(self, request: web.Request) -> web.StreamResponse:
        match = _ARCHIVE_PATH.match(request.path)
        if match is None or match["symbol"] != self.market.symbol:
            raise web.HTTPNotFound()
        kind, interval = match["kind"], match["interval"]
        try:
            day = dt.date.fromisoformat(match["name"][-14:-4])
        except ValueError:
            raise web.HTTPNotFound() from None
        name = archive_files.archive_name(self.market.symbol, kind, day, interval)
        if name != match["name"] or day not in self.market.archive_days():
            raise web.HTTPNotFound()
        if kind == "klines" and interval not in KLINE_INTERVALS_US:
            raise web.HTTPNotFound()
        content = self._archive_zip(kind, interval, day)
        if match["checksum"]:
            return web.Response(text=archive_files.checksum_text(content, name))
        if (kind, day) in self.market.rest_faults.corrupted:
            content = _corrupt(content)
        return web.Response(body=content, content_type="application/zip")

    def _archive_zip(self, kind: str, interval: str | None, day: dt.date) -> bytes:
        key = (kind, interval, day)
        if key not in self._archives:
            start = (day - dt.date(1970, 1, 1)).days * US_PER_DAY
            tape = self.market.tape
            if kind == "trades":
                csv = archive_files.trades_csv(tape.day(start, start + US_PER_DAY), day)
            elif kind == "aggTrades":
                aggs = tape.agg_trades()
                lo, hi = np.searchsorted(aggs.time_us, [start, start + US_PER_DAY])
                csv = archive_files.agg_trades_csv(aggs.take(slice(int(lo), int(hi))), day)
            else:
                assert interval is not None
                width = KLINE_INTERVALS_US[interval]
                # "Now" at the day's last µs: candles after the day's last trade are in it too.
                day_end = start + US_PER_DAY - 1
                klines = tape.klines(width, start, day_end, US_PER_DAY // width, day_end)
                csv = archive_files.klines_csv(klines, day)
            name = archive_files.archive_name(self.market.symbol, kind, day, interval)
            self._archives[key] = archive_files.zip_csv(name[:-4] + ".csv", csv)
        return self._archives[key]


def exchange_info(
    market: MarketState, server_time: int, weight_limit: int = 6000
) -> dict[str, Any]:
    """``exchangeInfo`` for the one symbol served, with the weight limit it enforces."""
    base, quote = (
        (market.symbol[:-4], market.symbol[-4:])
        if market.symbol.endswith("USDT")
        else (market.symbol[:3], market.symbol[3:])
    )
    return {
        "timezone": "UTC",
        "serverTime": server_time,
        "rateLimits": [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": weight_limit,
            },
            {
                "rateLimitType": "RAW_REQUESTS",
                "interval": "MINUTE",
                "intervalNum": 5,
                "limit": 300000,
            },
        ],
        "exchangeFilters": [],
        "symbols": [
            {
                "symbol": market.symbol,
                "status": "TRADING",
                "baseAsset": base,
                "baseAssetPrecision": 8,
                "quoteAsset": quote,
                "quotePrecision": 8,
                "quoteAssetPrecision": 8,
                "orderTypes": [
                    "LIMIT",
                    "LIMIT_MAKER",
                    "MARKET",
                    "STOP_LOSS_LIMIT",
                    "TAKE_PROFIT_LIMIT",
                ],
                "isSpotTradingAllowed": True,
                "filters": [
                    {
                        "filterType": "PRICE_FILTER",
                        "minPrice": format_e8(market.tick_size_e8),
                        "maxPrice": "1000000.00000000",
                        "tickSize": format_e8(market.tick_size_e8),
                    },
                    {
                        "filterType": "LOT_SIZE",
                        "minQty": format_e8(market.step_size_e8),
                        "maxQty": "9000.00000000",
                        "stepSize": format_e8(market.step_size_e8),
                    },
                ],
                "permissions": [],
                "permissionSets": [["SPOT"]],
            }
        ],
    }


def _depth_request_weight(request: web.Request) -> int:
    return depth_weight(_limit(request.query, MAX_DEPTH_LIMIT, default=100, clip=True))


def _limit(query: Any, maximum: int, *, default: int = 500, clip: bool = False) -> int:
    limit = _optional_int(query, "limit")
    if limit is None:
        return default
    if limit < 1 or (limit > maximum and not clip):
        raise ApiError(
            400, -1130, f"Invalid data sent for a parameter: limit must be 1..{maximum}."
        )
    return min(limit, maximum)


def _optional_int(query: Any, name: str) -> int | None:
    text = query.get(name)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise ApiError(400, -1100, f"Illegal characters found in parameter '{name}'.") from None


def _optional_time(query: Any, name: str) -> int | None:
    value = _optional_int(query, name)
    return None if value is None else epoch_to_us(value)


def _time_out(time_us: int, micros: bool) -> int:
    return time_us if micros else time_us // 1_000


def _span(ranges: list[tuple[int, int]]) -> int:
    """How many extra rows to read so that a page stays full after withholding."""
    return sum(last - first + 1 for first, last in ranges)


def _outside(ids: np.ndarray, ranges: list[tuple[int, int]]) -> np.ndarray:
    keep = np.ones(len(ids), dtype=bool)
    for first, last in ranges:
        keep &= (ids < first) | (ids > last)
    return np.flatnonzero(keep)


def _corrupt(content: bytes) -> bytes:
    """Flip bytes in the middle of the compressed data: the checksum and the inflate both fail."""
    middle = len(content) // 2
    damaged = bytes(b ^ 0xFF for b in content[middle : middle + 16])
    return content[:middle] + damaged + content[middle + 16 :]


def _error(error: ApiError, used_weight: int) -> web.Response:
    return web.json_response(
        {"code": error.code, "msg": error.msg},
        status=error.status,
        headers={USED_WEIGHT_HEADER: str(used_weight)},
    )


def _limited(
    status: int, used_weight: int, retry_after_s: int, weight_limit: int | None
) -> web.Response:
    if status == 418:
        msg = "Way too much request weight used; IP banned. Please use WebSocket Streams."
    else:
        msg = (
            f"Too much request weight used; current limit is {weight_limit} request weight "
            "per 1 MINUTE."
        )
    return web.json_response(
        {"code": -1003, "msg": msg},
        status=status,
        headers={USED_WEIGHT_HEADER: str(used_weight), "Retry-After": str(retry_after_s)},
    )
