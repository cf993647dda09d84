"""ml.model_candidate and ml.production_model.

The candidate trains on the newest days of gold.training_1s, writes its bundle to the model
store and its row to ml.model_registry, and proves itself with three blocking checks (ONNX
equals torch, single-row latency, the promotion gate). A refused gate is a valid outcome on
real data: the candidate is still registered, with the reasons, and nothing is promoted.
The production model moves the newest candidate through shadow → canary → production.
"""

import datetime as dt
import tempfile
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.exceptions import NoSuchTableError

from btc_platform.defs.constants import (
    GOLD_TRAINING_1S,
    MODEL_CANDIDATE,
    ONNX_MATCHES_TORCH,
    OWNERS,
    PRODUCTION_MODEL,
    PROMOTION_GATE,
    SINGLE_ROW_LATENCY,
)
from btc_platform.defs.partitions import US_PER_DAY
from btc_platform.defs.resources import LakehouseResource, ModelStoreResource, RedisResource
from btc_platform.lakehouse import tables
from btc_platform.ml import registry
from btc_platform.ml.pointer import PromotionRefused, Stage
from btc_platform.ml.registry import RegistryEntry

MAX_LATENCY_P99_MS = 1.0
MAX_ONNX_DIFFERENCE = 1e-6


class TrainingRun(dg.Config):
    """What to train on and how long."""

    mode: str = "full"
    """``full``: a new model on the newest ``days``; ``incremental``: the production model
    with its output layer refitted on the newest ``hours``."""
    days: int = 7
    """The newest days of gold.training_1s to use (full)."""
    hours: int = 6
    """The newest hours of gold.training_1s to use (incremental)."""
    max_epochs: int = 200
    seed: int = 7


class Promotion(dg.Config):
    through: str = "production"
    """The last stage to move the newest candidate to: shadow, canary or production."""


CANDIDATE_CHECKS = [
    dg.AssetCheckSpec(
        ONNX_MATCHES_TORCH,
        asset=MODEL_CANDIDATE,
        blocking=True,
        description=f"onnxruntime reproduces torch within {MAX_ONNX_DIFFERENCE:g} on the "
        "golden vectors.",
    ),
    dg.AssetCheckSpec(
        SINGLE_ROW_LATENCY,
        asset=MODEL_CANDIDATE,
        blocking=True,
        description=f"Single-row onnxruntime latency p99 ≤ {MAX_LATENCY_P99_MS:g} ms.",
    ),
    dg.AssetCheckSpec(
        PROMOTION_GATE,
        asset=MODEL_CANDIDATE,
        blocking=True,
        description="On test, MAE below the zero baseline's and hit-rate above 50 % beyond "
        "chance (one-sided binomial p < 0.01). Failing it is a valid outcome: not promotable.",
    ),
]


@dg.asset(
    key=MODEL_CANDIDATE,
    deps=[GOLD_TRAINING_1S],
    group_name="ml",
    owners=OWNERS,
    kinds={"pytorch", "onnx", "iceberg"},
    description=(
        "A torch MLP (in → 64 → 32 → 1) trained on the newest days of gold.training_1s with a "
        "time split, exported to ONNX with its scaler folded in, scored against the zero, "
        "momentum and linear baselines, and registered with its bundle and lineage."
    ),
    check_specs=CANDIDATE_CHECKS,
    metadata={"table": tables.MODEL_REGISTRY.qualified_name},
)
def model_candidate(
    context: dg.AssetExecutionContext,
    config: TrainingRun,
    lakehouse: LakehouseResource,
    model_store: ModelStoreResource,
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    # Torch loads here, not when the code location loads (the webserver never trains).
    from btc_platform.ml.candidate import train_candidate
    from btc_platform.ml.dataset import training_set_from_table
    from btc_platform.ml.plots import hit_rate_by_decile_markdown, predicted_vs_realised_markdown
    from btc_platform.ml.train import TrainConfig
    from realtime.inference.bundle import write_bundle

    catalog = lakehouse.catalog()
    symbol = lakehouse.settings().symbol
    store = model_store.store()
    if config.mode not in ("full", "incremental"):
        raise dg.Failure(f"mode must be full or incremental, not {config.mode!r}")
    warm_start, base_version = None, None
    if config.mode == "incremental":
        warm_start, base_version = _production_model(store, symbol)
    start_us, end_us, gold = _training_data(catalog, symbol, config)
    training_set = training_set_from_table(gold)
    now = dt.datetime.now(dt.UTC)
    candidate = train_candidate(
        training_set,
        symbol=symbol,
        lineage=_lineage(catalog, symbol, start_us, end_us),
        now=now,
        config=TrainConfig(seed=config.seed, max_epochs=config.max_epochs),
        warm_start=warm_start,
        base_version=base_version,
    )
    with tempfile.TemporaryDirectory() as scratch:
        manifest = write_bundle(Path(scratch), candidate.onnx_bytes, candidate.manifest)
        bundle_uri = store.put_bundle(symbol, manifest.version, Path(scratch))
    test = candidate.metrics["test"]
    registry.record(
        catalog,
        RegistryEntry(
            symbol=symbol,
            model_version=manifest.version,
            created_at=now,
            stage=Stage.CANDIDATE,
            promotable=candidate.gate.promotable,
            gate_reasons=candidate.gate.reasons,
            contract_version=manifest.contract_version,
            onnx_sha256=manifest.onnx_sha256,
            bundle_uri=bundle_uri,
            train_start=dt.datetime.fromtimestamp(candidate.splits.train.time_range[0], dt.UTC),
            test_end=dt.datetime.fromtimestamp(candidate.splits.test.time_range[1], dt.UTC),
            test_mae=test["model"].mae,
            test_hit_rate=test["model"].hit_rate,
            zero_mae=test["zero"].mae,
            metrics=manifest.metrics,
            lineage=manifest.lineage,
        ),
        now,
    )
    context.log.info("candidate %s: %s", manifest.version, "; ".join(candidate.gate.reasons))
    yield dg.MaterializeResult(
        metadata={
            "model_version": manifest.version,
            "training": config.mode,
            "base_version": base_version,
            "bundle_uri": bundle_uri,
            "promotable": candidate.gate.promotable,
            "gate": dg.MetadataValue.md("\n".join(f"- {r}" for r in candidate.gate.reasons)),
            "metrics": dg.MetadataValue.md(_metrics_table(candidate.metrics)),
            "predicted_vs_realised": dg.MetadataValue.md(
                predicted_vs_realised_markdown(
                    candidate.test_predictions, candidate.splits.test.labels
                )
            ),
            "hit_rate_by_decile": dg.MetadataValue.md(
                hit_rate_by_decile_markdown(candidate.deciles)
            ),
            "rows": dg.MetadataValue.json(manifest.training["rows"]),
            "best_epoch": manifest.training["best_epoch"],
            "epochs": manifest.training["epochs"],
            "latency_ms": dg.MetadataValue.json(candidate.latency_ms),
            "lineage": dg.MetadataValue.json(manifest.lineage),
        }
    )
    yield dg.AssetCheckResult(
        check_name=ONNX_MATCHES_TORCH,
        passed=candidate.onnx_torch_max_difference <= MAX_ONNX_DIFFERENCE,
        metadata={"max_abs_difference": candidate.onnx_torch_max_difference},
    )
    yield dg.AssetCheckResult(
        check_name=SINGLE_ROW_LATENCY,
        passed=candidate.latency_ms["p99"] <= MAX_LATENCY_P99_MS,
        metadata={"p50_ms": candidate.latency_ms["p50"], "p99_ms": candidate.latency_ms["p99"]},
    )
    yield dg.AssetCheckResult(
        check_name=PROMOTION_GATE,
        passed=candidate.gate.promotable,
        description="; ".join(candidate.gate.reasons),
        metadata={
            "binomial_p_value": candidate.gate.p_value,
            "test_mae": test["model"].mae,
            "zero_mae": test["zero"].mae,
            "test_hit_rate": test["model"].hit_rate,
        },
    )


@dg.asset(
    key=PRODUCTION_MODEL,
    deps=[MODEL_CANDIDATE],
    group_name="ml",
    owners=OWNERS,
    kinds={"onnx", "redis"},
    description=(
        "The serving pointer: the newest candidate moved through shadow → canary → "
        "production (current.json in the model store, then the registry, then a "
        "best-effort copy in Redis model:{SYM}:current), only if its gate said promotable."
    ),
)
def production_model(
    context: dg.AssetExecutionContext,
    config: Promotion,
    lakehouse: LakehouseResource,
    model_store: ModelStoreResource,
    redis: RedisResource,
) -> dg.MaterializeResult:
    from btc_platform.defs.ml.promotion import production_key, reported
    from btc_platform.ml.serving import RegistryBehind, promote

    catalog = lakehouse.catalog()
    symbol = lakehouse.settings().symbol
    versions = registry.entries(catalog, symbol)
    if not versions:
        raise dg.Failure(f"no model of {symbol} is registered yet")
    newest = versions[-1]
    store = model_store.store()
    pointer = store.read_pointer(symbol)
    moved_metadata: dict[str, object] = {}
    with production_key(redis, lakehouse) as key:
        try:
            moved = promote(
                store,
                catalog,
                key,
                symbol,
                newest.model_version,
                through=Stage(config.through),
                now=dt.datetime.now(dt.UTC),
            )
            pointer = moved.pointer
            moved_metadata = reported(context, moved)
            outcome = f"{newest.model_version} promoted through {config.through}"
        except PromotionRefused as refusal:
            outcome = f"{newest.model_version} not promoted: {refusal}"
        except RegistryBehind as behind:
            raise dg.Failure(str(behind)) from behind
    context.log.info(outcome)
    return dg.MaterializeResult(
        metadata={
            "outcome": outcome,
            "production": pointer.production if pointer else None,
            "canary": pointer.canary if pointer else None,
            "shadow": pointer.shadow if pointer else None,
            "previous": dg.MetadataValue.json(list(pointer.previous) if pointer else []),
            "candidate_reasons": dg.MetadataValue.json(newest.gate_reasons),
            **moved_metadata,
        }
    )


def _training_window(catalog, days: int) -> tuple[int, int]:
    """The ``days`` UTC days up to the newest day in gold.training_1s."""
    try:
        table = catalog.load_table(tables.GOLD_TRAINING_1S.identifier)
    except NoSuchTableError:
        raise dg.Failure("gold.training_1s does not exist yet: materialise it first") from None
    partitions = table.inspect.partitions()
    if partitions.num_rows == 0:
        raise dg.Failure("gold.training_1s is empty: materialise it first")
    newest_day = max(p["ts_day"] for p in partitions["partition"].to_pylist())  # a date
    end_us = ((newest_day - dt.date(1970, 1, 1)).days + 1) * US_PER_DAY
    return end_us - days * US_PER_DAY, end_us


def _training_data(catalog, symbol: str, config: TrainingRun) -> tuple[int, int, pa.Table]:
    """The window ``[start_us, end_us)`` of ``config`` and ``symbol``'s gold rows in it.

    A lake may hold several symbols: only ``symbol``'s rows train its model.
    """
    if config.mode == "incremental":
        start_us, end_us = _newest_hours(catalog, symbol, config.hours)
    else:
        start_us, end_us = _training_window(catalog, config.days)
    gold = tables.scan_window(catalog, tables.GOLD_TRAINING_1S, start_us, end_us, symbol=symbol)
    return start_us, end_us, gold


def _newest_hours(catalog, symbol: str, hours: int) -> tuple[int, int]:
    """The ``hours`` before ``symbol``'s newest second in gold.training_1s."""
    _, day_end_us = _training_window(catalog, 1)
    newest_day = tables.scan_window(
        catalog,
        tables.GOLD_TRAINING_1S,
        day_end_us - US_PER_DAY,
        day_end_us,
        ("ts_sec",),
        symbol=symbol,
    )
    end_us = (pc.max(newest_day["ts_sec"]).as_py() + 1) * 1_000_000
    return end_us - hours * 3_600_000_000, end_us


def _production_model(store, symbol: str):
    """The serving model, rebuilt from its ONNX file, to refit incrementally."""
    from btc_platform.ml.train import WarmStart
    from btc_platform.ml.warm_start import model_from_onnx
    from realtime.inference.bundle import load_bundle

    pointer = store.read_pointer(symbol)
    if pointer is None or pointer.production is None:
        raise dg.Failure(f"no {symbol} model in production to update: train a full one first")
    with tempfile.TemporaryDirectory() as scratch:
        bundle = store.fetch_bundle(symbol, pointer.production, Path(scratch))
        load_bundle(bundle)  # the same checks the service makes: never build on a bad file
        onnx_bytes = (bundle / "model.onnx").read_bytes()
    return WarmStart(model_from_onnx(onnx_bytes)), pointer.production


def _lineage(catalog, symbol: str, start_us: int, end_us: int) -> dict:
    """Which table versions and which of ``symbol``'s trades the candidate learnt from."""
    bars = tables.scan_window(
        catalog,
        tables.SILVER_BARS_1S,
        start_us,
        end_us,
        ("first_trade_id", "last_trade_id"),
        symbol=symbol,
    )
    trades = tables.scan_window(
        catalog, tables.SILVER_TRADES, start_us, end_us, ("agg_trade_id",), symbol=symbol
    )
    return {
        "tables": {
            spec.qualified_name: tables.current_snapshot_id(catalog, spec)
            for spec in (tables.GOLD_TRAINING_1S, tables.SILVER_FEATURES_1S, tables.SILVER_TRADES)
        },
        "time_range": {"start_us": start_us, "end_us": end_us},
        "agg_trade_id_range": _range(trades, "agg_trade_id", "agg_trade_id"),
        "trade_id_range": _range(bars, "first_trade_id", "last_trade_id"),
    }


def _range(rows: pa.Table, low: str, high: str) -> dict:
    return {"first": pc.min(rows[low]).as_py(), "last": pc.max(rows[high]).as_py()}


def _metrics_table(metrics: dict) -> str:
    lines = [
        "| split | predictor | MAE | MSE | hit-rate | directional calls |",
        "|---|---|---|---|---|---|",
    ]
    for split, by_name in metrics.items():
        for name, m in by_name.items():
            hit = "n/a" if m.hit_rate is None else f"{m.hit_rate:.4f}"
            lines.append(
                f"| {split} | {name} | {m.mae:.4g} | {m.mse:.4g} | {hit} | {m.n_directional} |"
            )
    return "\n".join(lines)
