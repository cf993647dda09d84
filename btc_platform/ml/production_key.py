"""Redis ``model:{SYM}:current``: a best-effort copy of the pointer's production version.

The live service serves what the pointer file in the model store names (it polls the
file), so this key is a notification for whoever watches Redis, never the truth. Copying it
can fail without harm: the failure is returned, not raised, and ``btc-models reconcile`` or
the next promotion copies the pointer again. Every call is bounded by the connect and
socket timeouts, with no retries, so a Redis that is down or paused costs seconds, never a
hang.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from realtime.inference.pointer import ModelPointer
from realtime.state.keys import Keys
from realtime.state.redis_connection import RedisConnection

TIMEOUT_S = 2.0
"""Connect and socket timeout of each call; a healthy Redis answers in well under 1 ms."""


@dataclass(frozen=True)
class KeyCopy:
    """What a copy to Redis did: ``synced``, or why not (``problem``: the error, no secrets)."""

    synced: bool
    production: str | None
    problem: str = ""

    def describe(self) -> str:
        target = self.production or "no production version"
        if self.synced:
            return f"Redis says {target}"
        return f"Redis not updated to {target}: {self.problem}"


class ProductionKey:
    """The production-version keys of one Redis server, written with bounded calls."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    @classmethod
    def connect(cls, connection: RedisConnection, *, timeout_s: float = TIMEOUT_S) -> Self:
        """A client of ``connection`` (URL, password, TLS trust) whose calls are bounded.

        No retries: the copy is best-effort and the caller moves on, so a retry would only
        lengthen the wait on a Redis that is down.
        """
        client = redis.Redis.from_url(
            connection.url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
            **connection.options(),
        )
        return cls(client)

    def publish(self, pointer: ModelPointer) -> KeyCopy:
        """Copy ``pointer``'s production version (delete the key when there is none)."""
        key = Keys(pointer.symbol).model_current
        try:
            if pointer.production is None:
                self._client.delete(key)
            else:
                self._client.set(key, pointer.production)
        except redis.RedisError as error:
            # Redis' messages name the host and port, never the URL's password.
            return KeyCopy(False, pointer.production, f"{type(error).__name__}: {error}")
        return KeyCopy(True, pointer.production)

    def read(self, symbol: str) -> str | None:
        """The version the key names now (``None`` if unset); ``redis.RedisError`` if down."""
        value = self._client.get(Keys(symbol).model_current)
        return value.decode() if value is not None else None

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
