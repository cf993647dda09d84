"""The exact check of gold.training_1s: every label is recomputed from silver.features_1s."""

import dagster as dg
import numpy as np
import pyarrow as pa

from btc_platform.defs.constants import GOLD_TRAINING_1S, TRAINING_LEAKAGE
from realtime.features.labels import HORIZON_S

SECONDS_PER_DAY = 86_400

LABELS_SPEC = dg.AssetCheckSpec(
    TRAINING_LEAKAGE,
    asset=GOLD_TRAINING_1S,
    blocking=True,
    description=(
        "Each label equals log_price(t+10) - log_price(t) of silver.features_1s bit for bit, "
        "and t+10 lies in the same day (no label reads past its partition's last second)."
    ),
)


def check_labels(training: pa.Table, features: pa.Table) -> dg.AssetCheckResult:
    """Recompute every label from the features and compare the float64 bit patterns."""
    log_price = dict(
        zip(features["ts_sec"].to_pylist(), features["log_price"].to_pylist(), strict=True)
    )
    ts = training["ts_sec"].to_numpy()
    labels = training["y_log_return_10s"].to_numpy()
    day_end_sec = (ts // SECONDS_PER_DAY + 1) * SECONDS_PER_DAY
    beyond = int(np.sum(ts + HORIZON_S >= day_end_sec))
    expected = np.array(
        [log_price.get(int(t) + HORIZON_S, np.nan) - log_price.get(int(t), np.nan) for t in ts],
        dtype=np.float64,
    )
    differing = int(np.sum(expected.view(np.int64) != labels.view(np.int64)))
    passed = differing == 0 and beyond == 0
    return dg.AssetCheckResult(
        check_name=TRAINING_LEAKAGE,
        passed=passed,
        description=(
            f"{len(ts)} labels equal to the features' bit for bit, none past its day"
            if passed
            else f"{differing} labels differ from the features; {beyond} read past the day"
        ),
        metadata={
            "rows": len(ts),
            "labels_differing": differing,
            "labels_past_partition": beyond,
        },
    )
