"""A registered model version in a real store and catalog, for the promotion tests.

The bundle's bytes are placeholders: promotion moves names, it never loads a model.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from btc_platform.ml import registry
from btc_platform.ml.pointer import Stage
from btc_platform.ml.registry import RegistryEntry
from btc_platform.ml.store import ModelStore

NOW = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
SYMBOL = "BTCUSDT"


def register(catalog, store: ModelStore, bundles: Path, version: str, promotable: bool) -> None:
    """Store a placeholder bundle of ``version`` and register it as a candidate."""
    bundle = bundles / version
    bundle.mkdir(parents=True)
    (bundle / "model.onnx").write_bytes(b"onnx " + version.encode())
    (bundle / "manifest.json").write_text(json.dumps({"version": version}))
    uri = store.put_bundle(SYMBOL, version, bundle)
    registry.record(
        catalog,
        RegistryEntry(
            symbol=SYMBOL,
            model_version=version,
            created_at=NOW,
            stage=Stage.CANDIDATE,
            promotable=promotable,
            gate_reasons=["test"],
            contract_version=1,
            onnx_sha256="0" * 64,
            bundle_uri=uri,
            train_start=NOW,
            test_end=NOW,
            test_mae=1e-4,
            test_hit_rate=0.6,
            zero_mae=2e-4,
            metrics={},
            lineage={},
        ),
        NOW,
    )


def stages(catalog) -> dict[str, str]:
    """Each registered version's stage, as the registry has it."""
    return {e.model_version: e.stage.value for e in registry.entries(catalog, SYMBOL)}
