"""``ml.model_registry``: one row per model version, upserted by version as it moves stages."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, replace

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import And, EqualTo

from btc_platform.lakehouse import tables
from btc_platform.lakehouse.tables import MODEL_REGISTRY, RECORD_VERSION, WindowWrite
from btc_platform.ml.pointer import ModelPointer, Stage, serving_stages

SOURCE = "ml.model_candidate"


@dataclass(frozen=True)
class RegistryEntry:
    """What the registry knows of one version."""

    symbol: str
    model_version: str
    created_at: dt.datetime
    stage: Stage
    promotable: bool
    gate_reasons: list[str]
    contract_version: int
    onnx_sha256: str
    bundle_uri: str
    train_start: dt.datetime
    test_end: dt.datetime
    test_mae: float
    test_hit_rate: float | None
    zero_mae: float
    metrics: dict
    lineage: dict

    def to_row(self, ingest_ts: dt.datetime) -> dict:
        return {
            "symbol": self.symbol,
            "model_version": self.model_version,
            "created_at": self.created_at,
            "stage": self.stage.value,
            "promotable": self.promotable,
            "gate_reasons": json.dumps(self.gate_reasons),
            "contract_version": self.contract_version,
            "onnx_sha256": self.onnx_sha256,
            "bundle_uri": self.bundle_uri,
            "train_start": self.train_start,
            "test_end": self.test_end,
            "test_mae": self.test_mae,
            "test_hit_rate": self.test_hit_rate,
            "zero_mae": self.zero_mae,
            "metrics": json.dumps(self.metrics, sort_keys=True),
            "lineage": json.dumps(self.lineage, sort_keys=True),
            "source": SOURCE,
            "ingest_ts": ingest_ts,
            "version": RECORD_VERSION,
        }

    @staticmethod
    def from_row(row: dict) -> RegistryEntry:
        return RegistryEntry(
            symbol=row["symbol"],
            model_version=row["model_version"],
            created_at=row["created_at"],
            stage=Stage(row["stage"]),
            promotable=row["promotable"],
            gate_reasons=json.loads(row["gate_reasons"]),
            contract_version=row["contract_version"],
            onnx_sha256=row["onnx_sha256"],
            bundle_uri=row["bundle_uri"],
            train_start=row["train_start"],
            test_end=row["test_end"],
            test_mae=row["test_mae"],
            test_hit_rate=row["test_hit_rate"],
            zero_mae=row["zero_mae"],
            metrics=json.loads(row["metrics"]),
            lineage=json.loads(row["lineage"]),
        )


def record(catalog: Catalog, entry: RegistryEntry, now: dt.datetime) -> WindowWrite:
    """Insert or replace the row of ``entry``'s version."""
    rows = pa.Table.from_pylist([entry.to_row(now)], schema=MODEL_REGISTRY.schema)
    return tables.replace_rows(
        catalog, MODEL_REGISTRY, rows, _key(entry.symbol, entry.model_version)
    )


def entry(catalog: Catalog, symbol: str, model_version: str) -> RegistryEntry | None:
    rows = tables.scan_where(catalog, MODEL_REGISTRY, _key(symbol, model_version)).to_pylist()
    return RegistryEntry.from_row(rows[0]) if rows else None


def entries(catalog: Catalog, symbol: str) -> list[RegistryEntry]:
    """Every version of ``symbol``, oldest first."""
    rows = tables.scan_where(catalog, MODEL_REGISTRY, EqualTo("symbol", symbol)).to_pylist()
    return sorted((RegistryEntry.from_row(r) for r in rows), key=lambda e: e.model_version)


def match_pointer(
    catalog: Catalog, pointer: ModelPointer, now: dt.datetime
) -> dict[str, tuple[Stage, Stage]]:
    """Set each registered version's stage to what ``pointer`` implies; return the changes.

    The pointer is the truth and the registry its record, so this is the whole of keeping
    them in step: after a move, and to repair a move whose registry update never happened.
    Only rows that differ are written. Returns ``{version: (was, now)}``.
    """
    changes: dict[str, tuple[Stage, Stage]] = {}
    registered_versions = entries(catalog, pointer.symbol)
    implied = serving_stages(pointer, (e.model_version for e in registered_versions))
    for registered in registered_versions:
        stage = implied[registered.model_version]
        if stage is not registered.stage:
            record(catalog, replace(registered, stage=stage), now)
            changes[registered.model_version] = (registered.stage, stage)
    return changes


def _key(symbol: str, model_version: str):
    return And(EqualTo("symbol", symbol), EqualTo("model_version", model_version))
