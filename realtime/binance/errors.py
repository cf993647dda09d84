"""Typed errors of the Binance REST client; all are ``BinanceError``s.

Callers retry nothing themselves: the client has already retried what is retryable
(5xx, timeouts, dropped connections, 429/418 within its limits) before one of these escapes.
"""

from __future__ import annotations


class BinanceError(Exception):
    """Base class of everything the REST client raises on purpose."""


class RateLimited(BinanceError):
    """HTTP 429 (code -1003): the request-weight limit of this IP was exceeded.

    ``retry_after_s`` is the server's ``Retry-After``: waiting less risks an IP ban (418).
    """

    status = 429

    def __init__(self, retry_after_s: float, *, code: int | None = None, msg: str = "") -> None:
        self.retry_after_s = retry_after_s
        self.code = code
        self.msg = msg
        super().__init__(f"HTTP {self.status}: rate limited, retry after {retry_after_s:g} s {msg}")


class IpBanned(BinanceError):
    """HTTP 418: the IP is banned (for continuing after 429s) for ``retry_after_s`` seconds."""

    status = 418

    def __init__(self, retry_after_s: float, *, code: int | None = None, msg: str = "") -> None:
        self.retry_after_s = retry_after_s
        self.code = code
        self.msg = msg
        super().__init__(f"HTTP {self.status}: IP banned for {retry_after_s:g} s {msg}")


class BinanceApiError(BinanceError):
    """Any other 4xx: the request itself is wrong; retrying cannot help.

    ``code`` and ``msg`` come from the body ``{"code": -1121, "msg": "Invalid symbol."}``;
    ``code`` is ``None`` when the body is not in that shape (e.g. an HTML page from a WAF).
    """

    def __init__(self, status: int, code: int | None, msg: str) -> None:
        self.status = status
        self.code = code
        self.msg = msg
        super().__init__(f"HTTP {status}: code {code}: {msg}")


class ServerError(BinanceError):
    """HTTP 5xx after the client's retries: Binance could not answer."""

    def __init__(self, status: int, detail: str = "") -> None:
        self.status = status
        self.detail = detail
        super().__init__(f"HTTP {status}: server error {detail}".rstrip())


class RequestTimeout(BinanceError):
    """No complete response within the per-request timeout, after the client's retries."""


class TransportError(BinanceError):
    """The connection failed or was dropped mid-response, after the client's retries."""


class MalformedResponse(BinanceError):
    """A 2xx response whose body is not the JSON shape the endpoint documents.

    ``path`` names the endpoint, ``detail`` what was wrong and ``excerpt`` a bounded piece of
    the offending body or row, for the log.
    """

    def __init__(self, path: str, detail: str, excerpt: str = "") -> None:
        self.path = path
        self.detail = detail
        self.excerpt = excerpt[:200]
        tail = f": {self.excerpt!r}" if self.excerpt else ""
        super().__init__(f"malformed response from {path}: {detail}{tail}")


class AggTradeGap(BinanceError):
    """Aggregate trade ids skipped: ``expected_id`` was due but ``got_id`` came instead.

    Aggregate ids are consecutive, so a skipped id means data is missing, not merely late.
    """

    def __init__(self, expected_id: int, got_id: int) -> None:
        self.expected_id = expected_id
        self.got_id = got_id
        super().__init__(
            f"aggTrades gap: expected id {expected_id}, got {got_id} "
            f"({got_id - expected_id} ids missing)"
        )
