"""What the model's Dagster steps share about a move: the Redis copy and how it is reported."""

from __future__ import annotations

import dagster as dg

from btc_platform.defs.resources import LakehouseResource, RedisResource
from btc_platform.ml.production_key import ProductionKey
from btc_platform.ml.serving import Moved


def production_key(redis: RedisResource, lakehouse: LakehouseResource) -> ProductionKey:
    """The Redis copy of the production version, every call bounded by timeouts.

    Its own client rather than ``redis.client()``: no retries and short timeouts, since a
    paused Redis must not hold a promotion or a rollback.
    """
    return ProductionKey.connect(redis.connection(lakehouse.settings()))


def reported(context: dg.OpExecutionContext, moved: Moved) -> dict[str, object]:
    """Log the registry rows set and a Redis copy that missed; return them as metadata."""
    for version, (was, now) in moved.registry_changes.items():
        context.log.info("registry: %s %s → %s", version, was, now)
    if moved.redis is not None and not moved.redis.synced:
        context.log.warning(
            "%s; the pointer serves, `btc-models reconcile` copies it", moved.redis.describe()
        )
    return {
        "registry_changes": dg.MetadataValue.json(
            {version: [was, now] for version, (was, now) in moved.registry_changes.items()}
        ),
        "redis": moved.redis.describe() if moved.redis is not None else "not configured",
    }
