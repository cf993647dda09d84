"""``btc-models``: what serves, and moving it (an operator's one action to roll back).

Reads the same ``BTC_*`` settings as the code location: the model store
(``BTC_MODEL_STORE``), the Iceberg catalog and Redis (``BTC_REDIS_URL``).

Exit status: 0 done (a Redis that missed a promotion or rollback is a warning: the pointer
is what serves); 1 refused or impossible, nothing changed; 2 the pointer moved but the
registry did not follow (``reconcile`` repairs it); 3 ``reconcile`` could not reach Redis.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Sequence

import redis

from btc_platform.lakehouse.catalog import open_catalog
from btc_platform.ml import registry
from btc_platform.ml.pointer import PromotionRefused, Stage, withdrawn
from btc_platform.ml.production_key import ProductionKey
from btc_platform.ml.serving import Moved, RegistryBehind, promote, reconcile, roll_back
from btc_platform.ml.store import ModelStore
from btc_platform.settings import LakehouseSettings, LakeNotConfigured
from realtime.inference.errors import PointerInvalid
from realtime.settings_checks import UnsafeSetting

REFUSED, REGISTRY_BEHIND, REDIS_UNREACHABLE = 1, 2, 3


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    now = dt.datetime.now(dt.UTC)
    try:
        settings = LakehouseSettings()
        symbol = settings.symbol
        store = ModelStore.open(settings.model_store_location)
        catalog = open_catalog(settings)
        with ProductionKey.connect(settings.redis_connection()) as production_key:
            if arguments.command == "status":
                print(json.dumps(_status(store, catalog, production_key, symbol), indent=2))
                return 0
            if arguments.command == "promote":
                moved = promote(
                    store,
                    catalog,
                    production_key,
                    symbol,
                    arguments.version,
                    through=Stage(arguments.through),
                    now=now,
                    force=arguments.force,
                )
            elif arguments.command == "rollback":
                moved = roll_back(store, catalog, production_key, symbol, now=now)
            else:
                moved = reconcile(store, catalog, production_key, symbol, now=now)
    except RegistryBehind as behind:
        _say(str(behind))
        return REGISTRY_BEHIND
    except KeyError as error:  # an unregistered version, a missing pointer
        _say(error.args[0] if error.args else str(error))
        return REFUSED
    except (PromotionRefused, PointerInvalid, LakeNotConfigured, UnsafeSetting, OSError) as error:
        # UnsafeSetting's message names the variable and never holds its secret.
        _say(str(error))
        return REFUSED
    print(json.dumps(_outcome(moved), indent=2))
    if moved.redis is None or moved.redis.synced:
        return 0
    _say(f"warning: {moved.redis.describe()}; `btc-models reconcile` copies it when Redis is back")
    return REDIS_UNREACHABLE if arguments.command == "reconcile" else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="btc-models", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("status", help="the pointer, Redis' copy and every version, as JSON")
    commands.add_parser("rollback", help="put the previous production version back")
    commands.add_parser(
        "reconcile", help="set the registry and Redis to what the pointer says (after a miss)"
    )
    promote_command = commands.add_parser("promote", help="move a version up the stages")
    promote_command.add_argument("version")
    promote_command.add_argument(
        "--through",
        choices=[s.value for s in Stage if s not in (Stage.CANDIDATE, Stage.RETIRED)],
        default=Stage.PRODUCTION.value,
    )
    promote_command.add_argument(
        "--force",
        metavar="REASON",
        help="promote a version its gate refused or that was rolled back; the reason is "
        "recorded in the pointer's history",
    )
    return parser


def _outcome(moved: Moved) -> dict:
    """One JSON document on stdout: the pointer, the registry rows set, the Redis copy."""
    return {
        "pointer": json.loads(moved.pointer.to_json()),
        "registry_changes": {v: [was, now] for v, (was, now) in moved.registry_changes.items()},
        "redis": {"synced": moved.redis.synced, "problem": moved.redis.problem}
        if moved.redis
        else None,
    }


def _status(store: ModelStore, catalog, production_key: ProductionKey, symbol: str) -> dict:
    pointer = store.read_pointer(symbol)
    try:
        redis_copy: dict = {"production": production_key.read(symbol)}
    except redis.RedisError as error:
        redis_copy = {"error": f"{type(error).__name__}: {error}"}
    return {
        "pointer": json.loads(pointer.to_json()) if pointer else None,
        "withdrawn": sorted(withdrawn(pointer)) if pointer else [],
        "redis": redis_copy,
        "versions": [
            {
                "version": e.model_version,
                "stage": e.stage.value,
                "promotable": e.promotable,
                "test_mae": e.test_mae,
                "test_hit_rate": e.test_hit_rate,
            }
            for e in registry.entries(catalog, symbol)
        ],
    }


def _say(message: str) -> None:
    print(f"btc-models: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
