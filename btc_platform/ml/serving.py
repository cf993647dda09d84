"""Moving models through the serving stages: the store's pointer, the registry, Redis.

The pointer file in the model store is the source of truth: the live service serves the
production version it names. Every move is, in this order:

1. read the pointer and compute the new one (pure; a refusal changes nothing);
2. replace the pointer in one atomic step: this is the commit;
3. set the registry rows to what the pointer implies (``registry.match_pointer``), which
   also repairs rows an earlier move left behind (a crash between steps 2 and 3);
4. copy the production version to Redis, best-effort with bounded calls: a Redis that is
   down or paused is reported in the result and never fails or undoes the move.

``reconcile`` runs steps 3 and 4 alone, for a registry or a Redis that missed a move.
Two moves of one symbol at the same moment are not serialised: the later pointer write
wins and the registry follows it on the next move or reconcile.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from pyiceberg.catalog import Catalog

from btc_platform.ml import registry
from btc_platform.ml.pointer import (
    ModelPointer,
    PromotionRefused,
    Stage,
    promoted_through,
    rollback,
)
from btc_platform.ml.production_key import KeyCopy, ProductionKey
from btc_platform.ml.store import ModelStore


class RegistryBehind(RuntimeError):
    """The pointer moved (the move took effect) but the registry rows could not be set."""

    def __init__(self, pointer: ModelPointer, redis: KeyCopy, cause: Exception) -> None:
        super().__init__(
            f"{pointer.symbol} pointer committed (production {pointer.production}) but the "
            f"registry was not updated: {type(cause).__name__}: {cause}; "
            "`btc-models reconcile` repairs it"
        )
        self.pointer = pointer
        self.redis = redis


@dataclass(frozen=True)
class Moved:
    """The pointer after a move, and what followed it."""

    pointer: ModelPointer
    registry_changes: dict[str, tuple[Stage, Stage]] = field(default_factory=dict)
    """``{version: (was, now)}``: rows set to match the pointer (this move's and repairs)."""
    redis: KeyCopy | None = None
    """The Redis copy's outcome; ``None`` when no Redis was given."""


def promote(
    store: ModelStore,
    catalog: Catalog,
    production_key: ProductionKey | None,
    symbol: str,
    version: str,
    *,
    through: Stage = Stage.PRODUCTION,
    now: dt.datetime,
    force: str | None = None,
) -> Moved:
    """Move ``version`` stage by stage up to ``through`` in one pointer write.

    ``PromotionRefused`` (nothing written) for a version whose gate said no or that was
    rolled back, unless ``force`` gives a reason; ``KeyError`` if it is not registered;
    ``RegistryBehind`` if the pointer moved but the registry could not follow.
    """
    entry = registry.entry(catalog, symbol, version)
    if entry is None:
        raise KeyError(f"{symbol} {version} is not registered")
    pointer = _pointer_or_new(store, catalog, symbol)
    moved = promoted_through(
        pointer, version, through, promotable=entry.promotable, now=now, force=force
    )
    return _commit(store, catalog, production_key, moved, now)


def roll_back(
    store: ModelStore,
    catalog: Catalog,
    production_key: ProductionKey | None,
    symbol: str,
    *,
    now: dt.datetime,
) -> Moved:
    """Put the previous production version back in one pointer write.

    The version it replaces is retired and is promoted again only when forced.
    """
    return _commit(store, catalog, production_key, rollback(_pointer(store, symbol), now=now), now)


def reconcile(
    store: ModelStore,
    catalog: Catalog,
    production_key: ProductionKey | None,
    symbol: str,
    *,
    now: dt.datetime,
) -> Moved:
    """Bring the registry and Redis in line with the pointer; the pointer is not written."""
    pointer = _pointer(store, symbol)
    changes = registry.match_pointer(catalog, pointer, now)
    copy = production_key.publish(pointer) if production_key is not None else None
    return Moved(pointer, changes, copy)


def _commit(
    store: ModelStore,
    catalog: Catalog,
    production_key: ProductionKey | None,
    pointer: ModelPointer,
    now: dt.datetime,
) -> Moved:
    store.write_pointer(pointer)
    try:
        changes = registry.match_pointer(catalog, pointer, now)
    # Whatever the catalog raises (OSError, a commit conflict, a database error), the move
    # has taken effect: Redis is still told, then the caller hears the registry is behind.
    except Exception as error:
        copy = production_key.publish(pointer) if production_key is not None else None
        raise RegistryBehind(pointer, copy, error) from error
    copy = production_key.publish(pointer) if production_key is not None else None
    return Moved(pointer, changes, copy)


def _pointer(store: ModelStore, symbol: str) -> ModelPointer:
    pointer = store.read_pointer(symbol)
    if pointer is None:
        raise KeyError(f"{symbol.upper()} has no pointer in {store.uri}")
    return pointer


def _pointer_or_new(store: ModelStore, catalog: Catalog, symbol: str) -> ModelPointer:
    """The pointer, or an empty one for a first promotion.

    Refuses to start afresh when the registry says versions serve: then the pointer is
    missing from this store (most likely the wrong ``BTC_MODEL_STORE``), and a new pointer
    would silently take production over from the real one.
    """
    pointer = store.read_pointer(symbol)
    if pointer is not None:
        return pointer
    serving = [
        f"{e.model_version} ({e.stage})"
        for e in registry.entries(catalog, symbol)
        if e.stage in (Stage.SHADOW, Stage.CANARY, Stage.PRODUCTION)
    ]
    if serving:
        raise PromotionRefused(
            f"{store.uri} has no {symbol.upper()} pointer, yet the registry says "
            f"{', '.join(serving)} serve: is BTC_MODEL_STORE the right store?"
        )
    return ModelPointer(symbol.upper())
