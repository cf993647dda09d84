"""Async Binance Spot REST client for market data, and the aggTrades pager used for backfill.

Every request goes through one shared ``RateBudget`` (Binance limits weight per IP) and is
retried here, so callers see either parsed data or one typed ``BinanceError``:

* 5xx, timeouts and dropped connections: capped exponential backoff with full jitter;
* 429/418: wait exactly ``Retry-After`` (all users of the budget wait), then retry;
* other 4xx and malformed bodies: raised at once, retrying cannot help.

Numbers: decimal strings become exact e8 mantissas via ``parse_e8`` (kline volumes, which can
exceed int64 at e8, become ``Decimal``s for decimal128); times become int microseconds via
``epoch_to_us``, whether or not the server honoured ``X-MBX-TIME-UNIT: MICROSECOND``.
"""

from __future__ import annotations

import decimal
import json
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NoReturn, TypeVar

import aiohttp
import pyarrow as pa

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
from realtime.binance.http_session import SessionOwner
from realtime.binance.rate_budget import WINDOW_S, RateBudget
from realtime.clock import Clock, SystemClock
from realtime.market import arrow_schemas
from realtime.market.events import AggTrade, DepthSnapshot, PriceLevel, Trade
from realtime.market.fixed_point import epoch_to_us, parse_e8

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.binance.com"
USED_WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
MAX_LIMIT = 1000
MAX_DEPTH_LIMIT = 5000

# Documented request weights (SPEC 2.2); aggTrades has been 4 since 2025-03-10.
WEIGHT_AGG_TRADES = 4
WEIGHT_TRADES = 25
WEIGHT_HISTORICAL_TRADES = 25
WEIGHT_KLINES = 2
WEIGHT_EXCHANGE_INFO = 20
WEIGHT_PING = 1
WEIGHT_TIME = 1

# The shortest Binance IP ban; used only if a 418 comes without Retry-After.
_DEFAULT_BAN_S = 120.0

_E8 = Decimal("1e-8")
# decimal128(38, 8): at most 38 significant digits; Inexact traps a 9th fractional digit.
_VOLUME_CONTEXT = decimal.Context(
    prec=38, traps=[decimal.Inexact, decimal.InvalidOperation, decimal.Overflow]
)
_ROW_ERRORS = (KeyError, IndexError, TypeError, ValueError, decimal.DecimalException)

T = TypeVar("T")


def depth_weight(limit: int) -> int:
    """Request weight of ``/api/v3/depth`` for ``limit`` levels (brackets 100/500/1000/5000)."""
    if limit <= 100:
        return 5
    if limit <= 500:
        return 25
    if limit <= 1000:
        return 50
    return 250


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry; delays in seconds.

    ``max_attempts`` counts every attempt, the first included, whatever failed.
    ``max_retry_after_s`` bounds the ``Retry-After`` the client waits out by itself; a longer
    one (an escalated 418 ban lasts up to days) is raised to the caller at once.
    """

    max_attempts: int = 5
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    max_retry_after_s: float = 600.0

    def backoff_s(self, retry: int, rng: random.Random) -> float:
        """Full jitter: uniform in ``[0, min(max_delay_s, base_delay_s * 2**retry)]`` seconds."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2.0 ** min(retry, 62))
        return rng.uniform(0.0, ceiling)


_shared_budget: RateBudget | None = None


def shared_budget() -> RateBudget:
    """The process-wide budget on the system clock, used by clients not given one."""
    global _shared_budget
    if _shared_budget is None:
        _shared_budget = RateBudget(SystemClock())
    return _shared_budget


class BinanceRestClient(SessionOwner):
    """Binance Spot market-data REST client (JSON, aiohttp); use as an async context manager.

    Without ``budget``, clients on the system clock share ``shared_budget()``; a client given
    only a ``clock`` (tests) gets its own budget on that clock. The optional ``api_key`` is
    sent as ``X-MBX-APIKEY`` and never logged or shown in ``repr``.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        api_key: str | None = None,
        session: aiohttp.ClientSession | None = None,
        budget: RateBudget | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        timeout_s: float = 10.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        if budget is None:
            budget = shared_budget() if clock is None else RateBudget(clock)
        self.budget = budget
        self.clock: Clock = clock or budget.clock
        self.retry = retry or RetryPolicy()
        if self.retry.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self.timeout_s = timeout_s
        self._rng = rng or random.Random()
        super().__init__(session)
        self._headers = {"X-MBX-TIME-UNIT": "MICROSECOND"}
        if api_key:
            self._headers["X-MBX-APIKEY"] = api_key

    def __repr__(self) -> str:
        has_key = "X-MBX-APIKEY" in self._headers
        return f"BinanceRestClient({self.base_url!r}, api_key={'set' if has_key else 'none'})"

    # -- endpoints ---------------------------------------------------------------------------

    async def agg_trades(
        self,
        symbol: str,
        from_id: int | None = None,
        start_time_us: int | None = None,
        end_time_us: int | None = None,
        limit: int = MAX_LIMIT,
    ) -> list[AggTrade]:
        """``GET /api/v3/aggTrades`` (weight 4): oldest first; ids and times inclusive.

        Page either by ``from_id`` or by time: Binance does not document combining them.
        """
        _check_limit(limit, MAX_LIMIT)
        if from_id is not None and (start_time_us is not None or end_time_us is not None):
            raise ValueError("aggTrades pages by from_id or by time, not both")
        symbol = symbol.upper()
        path = "/api/v3/aggTrades"
        params = {
            "symbol": symbol,
            "fromId": from_id,
            "startTime": start_time_us,
            "endTime": end_time_us,
            "limit": limit,
        }
        payload = await self.get_json(path, params, weight=WEIGHT_AGG_TRADES)
        return _rows(path, payload, lambda row: _agg_trade(symbol, row))

    async def trades(self, symbol: str, limit: int = 500) -> list[Trade]:
        """``GET /api/v3/trades`` (weight 25): the most recent raw trades, oldest first."""
        _check_limit(limit, MAX_LIMIT)
        symbol = symbol.upper()
        path = "/api/v3/trades"
        payload = await self.get_json(
            path, {"symbol": symbol, "limit": limit}, weight=WEIGHT_TRADES
        )
        return _rows(path, payload, lambda row: _trade(symbol, row))

    async def historical_trades(
        self, symbol: str, from_id: int | None = None, limit: int = 500
    ) -> list[Trade]:
        """``GET /api/v3/historicalTrades`` (weight 25): raw trades from ``from_id`` (inclusive).

        Not served by ``data-api.binance.vision``; use ``api.binance.com``.
        """
        _check_limit(limit, MAX_LIMIT)
        symbol = symbol.upper()
        path = "/api/v3/historicalTrades"
        params = {"symbol": symbol, "fromId": from_id, "limit": limit}
        payload = await self.get_json(path, params, weight=WEIGHT_HISTORICAL_TRADES)
        return _rows(path, payload, lambda row: _trade(symbol, row))

    async def klines(
        self,
        symbol: str,
        interval: str,
        start_time_us: int | None = None,
        end_time_us: int | None = None,
        limit: int = 500,
    ) -> pa.Table:
        """``GET /api/v3/klines`` (weight 2) as a table with schema ``arrow_schemas.KLINES``."""
        _check_limit(limit, MAX_LIMIT)
        path = "/api/v3/klines"
        params = {
            "symbol": symbol.upper(),
            "interval": interval,
            "startTime": start_time_us,
            "endTime": end_time_us,
            "limit": limit,
        }
        payload = await self.get_json(path, params, weight=WEIGHT_KLINES)
        return _klines_table(path, _rows(path, payload, _kline))

    async def depth(self, symbol: str, limit: int = 100) -> DepthSnapshot:
        """``GET /api/v3/depth`` (weight 5/25/50/250 by limit): a book snapshot, best first."""
        _check_limit(limit, MAX_DEPTH_LIMIT)
        symbol = symbol.upper()
        path = "/api/v3/depth"
        payload = await self.get_json(
            path, {"symbol": symbol, "limit": limit}, weight=depth_weight(limit)
        )
        try:
            return DepthSnapshot(
                symbol=symbol,
                event_time_us=None,
                last_update_id=_int(payload["lastUpdateId"]),
                bids=tuple(_level(level) for level in payload["bids"]),
                asks=tuple(_level(level) for level in payload["asks"]),
            )
        except _ROW_ERRORS as exc:
            raise MalformedResponse(path, f"{type(exc).__name__}: {exc}", repr(payload)) from exc

    async def exchange_info(self, symbol: str | None = None) -> dict[str, Any]:
        """``GET /api/v3/exchangeInfo`` (weight 20), unparsed: symbols, filters, rateLimits."""
        path = "/api/v3/exchangeInfo"
        params = {"symbol": symbol.upper() if symbol else None}
        payload = await self.get_json(path, params, weight=WEIGHT_EXCHANGE_INFO)
        if not isinstance(payload, dict) or not isinstance(payload.get("symbols", []), list):
            raise MalformedResponse(path, "expected an object with a symbols array", repr(payload))
        return payload

    async def server_time_us(self) -> int:
        """``GET /api/v3/time`` (weight 1): the server's clock in epoch microseconds."""
        path = "/api/v3/time"
        payload = await self.get_json(path, weight=WEIGHT_TIME)
        try:
            return epoch_to_us(_int(payload["serverTime"]))
        except _ROW_ERRORS as exc:
            raise MalformedResponse(path, f"{type(exc).__name__}: {exc}", repr(payload)) from exc

    async def ping(self) -> None:
        """``GET /api/v3/ping`` (weight 1): raises unless the API answers."""
        await self.get_json("/api/v3/ping", weight=WEIGHT_PING)

    # -- transport ---------------------------------------------------------------------------

    async def get_json(
        self, path: str, params: Mapping[str, object] | None = None, *, weight: int
    ) -> Any:
        """GET ``path`` with retries under the budget; return the decoded JSON body.

        ``None`` parameters are left out. Raises the last typed error once attempts run out.
        """
        query = {key: str(value) for key, value in (params or {}).items() if value is not None}
        attempts = self.retry.max_attempts
        for attempt in range(1, attempts + 1):
            await self.budget.acquire(weight)
            try:
                return await self._get_once(path, query)
            except (RateLimited, IpBanned) as exc:
                # _get_once has blocked the shared budget; the next acquire waits it out.
                if attempt == attempts or exc.retry_after_s > self.retry.max_retry_after_s:
                    raise
                log.warning("GET %s: %s; attempt %d/%d", path, exc, attempt, attempts)
            except (ServerError, RequestTimeout, TransportError) as exc:
                if attempt == attempts:
                    log.error("GET %s failed after %d attempts: %s", path, attempts, exc)
                    raise
                delay_s = self.retry.backoff_s(attempt - 1, self._rng)
                log.warning(
                    "GET %s: %s; retry %d/%d in %.2f s", path, exc, attempt, attempts, delay_s
                )
                await self.clock.sleep(delay_s)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _get_once(self, path: str, query: dict[str, str]) -> Any:
        session = self._ensure_session()
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        try:
            async with session.get(
                self.base_url + path, params=query, headers=self._headers, timeout=timeout
            ) as response:
                body = await response.read()
                status = response.status
                retry_after = response.headers.get("Retry-After")
                self.budget.observe(response.headers.get(USED_WEIGHT_HEADER))
        except TimeoutError as exc:
            # Checked first: aiohttp's timeout errors are also ClientErrors.
            raise RequestTimeout(f"GET {path}: no response within {self.timeout_s:g} s") from exc
        except aiohttp.ClientError as exc:
            raise TransportError(f"GET {path}: {type(exc).__name__}: {exc}") from exc
        if 200 <= status < 300:
            return _decode_json(path, body)
        self._raise_for_status(path, status, body, retry_after)

    def _raise_for_status(
        self, path: str, status: int, body: bytes, retry_after: str | None
    ) -> NoReturn:
        code, msg = _error_body(body)
        if status == 429:
            wait_s = _retry_after_s(retry_after, self._seconds_to_next_minute())
            self.budget.block_for(wait_s)
            raise RateLimited(wait_s, code=code, msg=msg)
        if status == 418:
            wait_s = _retry_after_s(retry_after, _DEFAULT_BAN_S)
            self.budget.block_for(wait_s)
            raise IpBanned(wait_s, code=code, msg=msg)
        if status >= 500:
            raise ServerError(status, msg)
        raise BinanceApiError(status, code, msg)

    def _seconds_to_next_minute(self) -> float:
        return WINDOW_S - self.clock.time() % WINDOW_S


class AggTradePager:
    """Walks ``/api/v3/aggTrades`` by ``fromId`` and yields contiguous, de-duplicated pages.

    Start from ``from_id``, or from ``start_time_us`` (the first page is found by time, then
    paging is by id). Stop after ``end_id`` and/or ``end_time_us`` (both inclusive; the last
    page is truncated there) or, without an end, when caught up (a page shorter than
    ``limit``). Ids already yielded are dropped; a skipped id raises ``AggTradeGap``, or, with
    ``record_gaps``, is recorded in ``gaps`` as an inclusive ``(first, last)`` id range and
    the walk goes on (a backfill keeps what it got and lets its completeness check name the
    hole; ``AggTradeGap`` would lose the whole window).

    ``next_id`` is the first id not yet yielded (``None`` while a time start is unresolved).
    It advances when a page is handed out, so after an exception a new pager from
    ``next_id`` (same ends) continues with no gap and no duplicate; iterating this pager
    again does the same.
    """

    path = "/api/v3/aggTrades"

    def __init__(
        self,
        client: BinanceRestClient,
        symbol: str,
        *,
        from_id: int | None = None,
        start_time_us: int | None = None,
        end_id: int | None = None,
        end_time_us: int | None = None,
        limit: int = MAX_LIMIT,
        record_gaps: bool = False,
    ) -> None:
        if (from_id is None) == (start_time_us is None):
            raise ValueError("give exactly one of from_id and start_time_us")
        _check_limit(limit, MAX_LIMIT)
        self._client = client
        self.symbol = symbol.upper()
        self.start_time_us = start_time_us
        self.end_id = end_id
        self.end_time_us = end_time_us
        self.limit = limit
        self.next_id = from_id
        self.done = from_id is not None and end_id is not None and from_id > end_id
        self.pages_yielded = 0
        self.trades_yielded = 0
        self.record_gaps = record_gaps
        self.gaps: list[tuple[int, int]] = []

    def __aiter__(self) -> AggTradePager:
        return self

    async def __anext__(self) -> list[AggTrade]:
        while not self.done:
            page = await self._fetch()
            kept = self._accept(page)
            if kept:
                self.next_id = kept[-1].agg_trade_id + 1
                self.pages_yielded += 1
                self.trades_yielded += len(kept)
                return kept
        raise StopAsyncIteration

    async def _fetch(self) -> list[AggTrade]:
        if self.next_id is None:
            return await self._client.agg_trades(
                self.symbol,
                start_time_us=self.start_time_us,
                end_time_us=self.end_time_us,
                limit=self.limit,
            )
        return await self._client.agg_trades(self.symbol, from_id=self.next_id, limit=self.limit)

    def _accept(self, page: list[AggTrade]) -> list[AggTrade]:
        """Validate one fetched page; return the new trades within bounds and update ``done``."""
        expected = self.next_id
        kept: list[AggTrade] = []
        reached_end = False
        for trade in page:
            agg_id = trade.agg_trade_id
            if expected is None:
                expected = agg_id  # the first page found by time defines the start
            if agg_id < expected:
                continue  # already yielded: an overlapping page or a repeated row
            if self._beyond_end(trade):
                reached_end = True
                break
            if agg_id != expected:
                if not self.record_gaps:
                    raise AggTradeGap(expected, agg_id)
                self.gaps.append((expected, agg_id - 1))
                expected = agg_id
            kept.append(trade)
            expected += 1
        if kept and self.end_id is not None and kept[-1].agg_trade_id >= self.end_id:
            reached_end = True
        caught_up = len(page) < self.limit
        if not kept and not (reached_end or caught_up):
            raise MalformedResponse(
                self.path, f"a full page from fromId={self.next_id} brought no new id"
            )
        self.done = reached_end or caught_up
        log.debug(
            "aggTrades %s: page of %d, kept %d, next_id %s, done %s",
            self.symbol,
            len(page),
            len(kept),
            expected,
            self.done,
        )
        return kept

    def _beyond_end(self, trade: AggTrade) -> bool:
        if self.end_id is not None and trade.agg_trade_id > self.end_id:
            return True
        return self.end_time_us is not None and trade.transact_time_us > self.end_time_us


# -- parsing ---------------------------------------------------------------------------------


def _check_limit(limit: int, maximum: int) -> None:
    if not 1 <= limit <= maximum:
        raise ValueError(f"limit must be in [1, {maximum}], got {limit}")


def _decode_json(path: str, body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        excerpt = body[:200].decode("utf-8", errors="replace")
        raise MalformedResponse(path, f"invalid JSON: {exc}", excerpt) from exc


def _error_body(body: bytes) -> tuple[int | None, str]:
    """``(code, msg)`` of a Binance error body; ``(None, text excerpt)`` for anything else."""
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if isinstance(payload, dict) and type(payload.get("code")) is int:
        return payload["code"], str(payload.get("msg", ""))
    return None, body[:200].decode("utf-8", errors="replace")


def _retry_after_s(header: str | None, default_s: float) -> float:
    """``Retry-After`` in seconds; ``default_s`` if absent or not a number of seconds."""
    if header is None:
        return default_s
    try:
        seconds = float(header)
    except ValueError:
        log.warning("unparseable Retry-After %r; waiting %.0f s", header, default_s)
        return default_s
    return seconds if seconds >= 0 else default_s


def _rows(path: str, payload: Any, parse: Callable[[Any], T]) -> list[T]:
    if not isinstance(payload, list):
        raise MalformedResponse(path, f"expected a JSON array, got {type(payload).__name__}")
    rows = []
    for index, row in enumerate(payload):
        try:
            rows.append(parse(row))
        except _ROW_ERRORS as exc:
            raise MalformedResponse(
                path, f"row {index}: {type(exc).__name__}: {exc}", repr(row)
            ) from exc
    return rows


def _int(value: Any) -> int:
    if type(value) is not int:  # JSON true/false would pass isinstance(value, int)
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def _bool(value: Any) -> bool:
    if type(value) is not bool:
        raise TypeError(f"expected a boolean, got {value!r}")
    return value


def _e8(value: Any) -> int:
    if type(value) is not str:  # a JSON number would have passed through float
        raise TypeError(f"expected a decimal string, got {value!r}")
    return parse_e8(value)


def _volume(value: Any) -> Decimal:
    """An exact decimal with at most 8 fractional digits and 38 significant digits."""
    if type(value) is not str:
        raise TypeError(f"expected a decimal string, got {value!r}")
    number = Decimal(value)
    if not number.is_finite():
        raise ValueError(f"not a finite decimal: {value!r}")
    return number.quantize(_E8, context=_VOLUME_CONTEXT)


def _level(level: Sequence[Any]) -> PriceLevel:
    price, qty = level
    return _e8(price), _e8(qty)


def _agg_trade(symbol: str, row: Mapping[str, Any]) -> AggTrade:
    return AggTrade(
        symbol=symbol,
        agg_trade_id=_int(row["a"]),
        price_e8=_e8(row["p"]),
        qty_e8=_e8(row["q"]),
        first_trade_id=_int(row["f"]),
        last_trade_id=_int(row["l"]),
        transact_time_us=epoch_to_us(_int(row["T"])),
        is_buyer_maker=_bool(row["m"]),
        is_best_match=_bool(row.get("M", True)),
    )


def _trade(symbol: str, row: Mapping[str, Any]) -> Trade:
    time_us = epoch_to_us(_int(row["time"]))
    return Trade(
        symbol=symbol,
        trade_id=_int(row["id"]),
        price_e8=_e8(row["price"]),
        qty_e8=_e8(row["qty"]),
        is_buyer_maker=_bool(row["isBuyerMaker"]),
        transact_time_us=time_us,
        event_time_us=time_us,
        is_best_match=_bool(row.get("isBestMatch", True)),
    )


_Kline = tuple[int, int, int, int, int, Decimal, int, Decimal, int, Decimal, Decimal]


def _kline(row: Sequence[Any]) -> _Kline:
    if not isinstance(row, list) or len(row) < 11:
        raise ValueError("expected an array of 12 values")
    return (
        epoch_to_us(_int(row[0])),
        _e8(row[1]),
        _e8(row[2]),
        _e8(row[3]),
        _e8(row[4]),
        _volume(row[5]),
        epoch_to_us(_int(row[6])),
        _volume(row[7]),
        _int(row[8]),
        _volume(row[9]),
        _volume(row[10]),
    )


def _klines_table(path: str, rows: list[_Kline]) -> pa.Table:
    schema = arrow_schemas.KLINES
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(schema)
    try:
        arrays = [
            pa.array(column, type=field.type) for column, field in zip(columns, schema, strict=True)
        ]
        return pa.Table.from_arrays(arrays, schema=schema)
    except (pa.ArrowException, OverflowError) as exc:
        raise MalformedResponse(path, f"klines do not fit {schema.names}: {exc}") from exc
