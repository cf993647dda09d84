"""``btc-models``: what serves, and moving it (an operator's one action to roll back).

Reads the same ``BTC_*`` settings as the code location: the model store
(``BTC_MODEL_STORE``), the Iceberg catalog and Redis (``BTC_REDIS_URL``).
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
from btc_platform.ml.pointer import PromotionRefused, Stage
from btc_platform.ml.serving import promote, roll_back
from btc_platform.ml.store import ModelStore
from btc_platform.settings import LakehouseSettings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="btc-models", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("status", help="the pointer and every registered version, as JSON")
    commands.add_parser("rollback", help="put the previous production version back")
    promote_command = commands.add_parser("promote", help="move a version up the stages")
    promote_command.add_argument("version")
    promote_command.add_argument(
        "--through",
        choices=[s.value for s in Stage if s not in (Stage.CANDIDATE, Stage.RETIRED)],
        default=Stage.PRODUCTION.value,
    )
    arguments = parser.parse_args(argv)

    settings = LakehouseSettings()
    store = ModelStore.open(settings.model_store_location)
    catalog = open_catalog(settings)
    client = redis.Redis.from_url(settings.redis_url)
    now = dt.datetime.now(dt.UTC)
    symbol = settings.symbol
    try:
        if arguments.command == "rollback":
            pointer = roll_back(store, catalog, client, symbol, now=now)
            print(json.dumps({"production": pointer.production, "previous": pointer.previous}))
        elif arguments.command == "promote":
            pointer = promote(
                store,
                catalog,
                client,
                symbol,
                arguments.version,
                through=Stage(arguments.through),
                now=now,
            )
            print(pointer.to_json())
        else:
            pointer = store.read_pointer(symbol)
            versions = [
                {
                    "version": e.model_version,
                    "stage": e.stage.value,
                    "promotable": e.promotable,
                    "test_mae": e.test_mae,
                    "test_hit_rate": e.test_hit_rate,
                }
                for e in registry.entries(catalog, symbol)
            ]
            print(
                json.dumps(
                    {
                        "pointer": json.loads(pointer.to_json()) if pointer else None,
                        "versions": versions,
                    },
                    indent=2,
                )
            )
    except (PromotionRefused, KeyError) as error:
        print(f"btc-models: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
