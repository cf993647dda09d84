"""Validate a lake table's rows against its suite with an in-memory GX context.

``validate_table`` is what an ``@asset_check`` calls; it knows nothing about Dagster. GX
1.x takes several seconds to import, so a Dagster module should import this one inside the
check's body, not at the top: every step process of the code location would pay for it.
"""

from __future__ import annotations

import functools
import threading

import great_expectations as gx
import pyarrow as pa
from great_expectations.core.batch_definition import BatchDefinition
from great_expectations.data_context import AbstractDataContext
from great_expectations.data_context.types.base import ProgressBarsConfig

from btc_platform.quality.frames import validation_frame
from btc_platform.quality.report import FailedExpectation, QualityReport, quality_report
from btc_platform.quality.suites import SUITES

__all__ = ["SUITES", "FailedExpectation", "QualityReport", "UnknownTable", "validate_table"]

RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 5}
"""Counts and a few unexpected values; SUMMARY's value counts and row indices cost time
and the report quotes only a few values."""


class UnknownTable(KeyError):
    """No suite is declared for this table name."""


def validate_table(table_name: str, data: pa.Table) -> QualityReport:
    """Run the suite of ``table_name`` (``namespace.table``) on ``data``.

    Calls are independent: each validates only its own rows, with a new suite.
    """
    build_suite = SUITES.get(table_name)
    if build_suite is None:
        raise UnknownTable(f"no expectation suite for {table_name!r}; known: {sorted(SUITES)}")
    frame = validation_frame(data)
    with _lock:
        batch = _batch_definition(table_name).get_batch(batch_parameters={"dataframe": frame})
        try:
            result = batch.validate(build_suite(), result_format=RESULT_FORMAT)
        finally:
            # The data source's engine keeps the last batch and its rows; drop both so a
            # day of rows is not held until the table's next check.
            batches = batch.data.execution_engine.batch_manager
            batches.reset_batch_cache()
            batches.batch_data_cache.clear()
    return quality_report(result, rows=data.num_rows)


_DATASOURCE = "lake"
_BATCH = "whole_table"
_lock = threading.Lock()
"""A GX context is not thread-safe: the checks of one process take turns."""


def _batch_definition(table_name: str) -> BatchDefinition:
    """The whole-frame batch definition of ``table_name`` in the process's context.

    One asset per table, made on first use: the rows arrive with each batch request, so an
    asset holds none between calls, and reusing it spares ~15 ms of bookkeeping per call.
    """
    datasource = _context().data_sources.get(_DATASOURCE)
    if table_name not in datasource.get_asset_names():
        asset = datasource.add_dataframe_asset(name=table_name)
        asset.add_batch_definition_whole_dataframe(_BATCH)
    return datasource.get_asset(table_name).get_batch_definition(_BATCH)


@functools.cache
def _context() -> AbstractDataContext:
    """The process's ephemeral (in-memory) GX context with one pandas data source."""
    context = gx.get_context(mode="ephemeral")
    # tqdm bars per validation would flood the check's captured output.
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    context.data_sources.add_pandas(_DATASOURCE)
    return context
