"""The Great Expectations suites of silver and gold as blocking asset checks.

The assets validate what they just wrote (the suite runs in an ephemeral GX context inside
the step), so a failed suite stops the layers above in the same run.
"""

import dagster as dg
import pyarrow as pa

from btc_platform.defs.constants import EXPECTATIONS


def _table_name(asset: dg.AssetKey) -> str:
    return ".".join(asset.path)


def expectations_spec(asset: dg.AssetKey) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        EXPECTATIONS,
        asset=asset,
        blocking=True,
        description=f"The Great Expectations suite of {_table_name(asset)} on the rows written.",
    )


def expectations_result(asset: dg.AssetKey, data: pa.Table) -> dg.AssetCheckResult:
    # Imported here: Great Expectations takes seconds to import, and the webserver, the
    # daemon and every run that loads the code location would pay it for nothing.
    from btc_platform.quality.expectations import validate_table

    report = validate_table(_table_name(asset), data)
    failed = "; ".join(failure.summary() for failure in report.failed)
    return dg.AssetCheckResult(
        asset_key=asset,
        check_name=EXPECTATIONS,
        passed=report.passed,
        description=failed or f"{report.evaluated} expectations met",
        metadata=report.as_metadata(),
    )
