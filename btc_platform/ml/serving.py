"""Moving models through the serving stages: registry, store pointer and Redis together.

The pointer file in the store is the source of truth; Redis ``model:{SYM}:current`` is the
copy the live service watches. Each change writes the pointer first (one atomic replace),
then Redis, then the registry rows. If Redis is down, the pointer already says the truth
and ``publish`` copies it again.
"""

from __future__ import annotations

import datetime as dt

from pyiceberg.catalog import Catalog
from redis import Redis

from btc_platform.ml import registry
from btc_platform.ml.pointer import ModelPointer, Stage, advance, rollback
from btc_platform.ml.store import ModelStore


def current_key(symbol: str) -> str:
    """The live service's pointer key; braces are the symbol's Redis Cluster hash tag."""
    return f"model:{{{symbol.upper()}}}:current"


def publish(redis_client: Redis | None, pointer: ModelPointer) -> None:
    """Copy the production version to Redis (deleting the key when there is none)."""
    if redis_client is None:
        return
    if pointer.production is None:
        redis_client.delete(current_key(pointer.symbol))
    else:
        redis_client.set(current_key(pointer.symbol), pointer.production)


def promote(
    store: ModelStore,
    catalog: Catalog,
    redis_client: Redis | None,
    symbol: str,
    version: str,
    *,
    through: Stage = Stage.PRODUCTION,
    now: dt.datetime,
) -> ModelPointer:
    """Move ``version`` stage by stage up to ``through``; return the final pointer.

    Refuses (``PromotionRefused``) a version whose gate said no, or that is not registered.
    """
    entry = registry.entry(catalog, symbol, version)
    if entry is None:
        raise KeyError(f"{symbol} {version} is not registered")
    pointer = store.read_pointer(symbol) or ModelPointer(symbol.upper())
    while pointer.stage_of(version) is not through:
        displaced = pointer.production
        pointer = advance(pointer, version, promotable=entry.promotable, now=now)
        store.write_pointer(pointer)
        publish(redis_client, pointer)
        registry.set_stage(catalog, symbol, version, pointer.stage_of(version), now)
        if displaced and pointer.production == version and displaced != version:
            registry.set_stage(catalog, symbol, displaced, Stage.RETIRED, now)
    return pointer


def roll_back(
    store: ModelStore,
    catalog: Catalog,
    redis_client: Redis | None,
    symbol: str,
    *,
    now: dt.datetime,
) -> ModelPointer:
    """Put the previous production version back in one step."""
    pointer = store.read_pointer(symbol)
    if pointer is None:
        raise KeyError(f"{symbol} has no pointer in {store.uri}")
    replaced = pointer.production
    pointer = rollback(pointer, now=now)
    store.write_pointer(pointer)
    publish(redis_client, pointer)
    if replaced:
        registry.set_stage(catalog, symbol, replaced, Stage.RETIRED, now)
    registry.set_stage(catalog, symbol, pointer.production, Stage.PRODUCTION, now)
    return pointer
