"""Names shared by assets, checks, sensors and tests."""

from __future__ import annotations

import dagster as dg

OWNERS = ["team:data-platform"]

BRONZE_AGG_TRADES = dg.AssetKey(["bronze", "agg_trades"])
SILVER_TRADES = dg.AssetKey(["silver", "trades"])
SILVER_BARS_1S = dg.AssetKey(["silver", "bars_1s"])
SILVER_FEATURES_1S = dg.AssetKey(["silver", "features_1s"])
GOLD_TRAINING_1S = dg.AssetKey(["gold", "training_1s"])

AGG_TRADE_IDS_COMPLETE = "agg_trade_ids_complete"
"""The blocking completeness proof of bronze.agg_trades."""
EXPECTATIONS = "great_expectations_suite"
BARS_RECONCILE = "bars_reconcile_with_trades"
TRAINING_LEAKAGE = "labels_within_complete_data"

MODEL_CANDIDATE = dg.AssetKey(["ml", "model_candidate"])
PRODUCTION_MODEL = dg.AssetKey(["ml", "production_model"])
ONNX_MATCHES_TORCH = "onnx_matches_torch"
SINGLE_ROW_LATENCY = "single_row_latency_p99"
PROMOTION_GATE = "promotion_gate"

BRONZE_LIVE_TRADES = dg.AssetKey(["bronze", "live_trades"])
BRONZE_LIVE_BEST_BID_ASK = dg.AssetKey(["bronze", "live_best_bid_ask"])
BRONZE_LIVE_DEPTH = dg.AssetKey(["bronze", "live_depth"])
GOLD_PREDICTIONS = dg.AssetKey(["gold", "predictions"])
GOLD_PREDICTION_QUALITY = dg.AssetKey(["gold", "prediction_quality"])
LIVE_TRADE_IDS_CONTIGUOUS = "live_trade_ids_contiguous"
"""The blocking id-contiguity check of bronze.live_trades."""
