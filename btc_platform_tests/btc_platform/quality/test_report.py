"""GX results condensed to one line per broken rule, and flat metadata for a Dagster check."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("great_expectations", reason="the batch extra is not installed")

from great_expectations.core import (
    ExpectationSuiteValidationResult,
    ExpectationValidationResult,
)
from great_expectations.expectations.expectation_configuration import (
    ExpectationConfiguration,
)

from btc_platform.quality.report import FailedExpectation, QualityReport, quality_report


def outcome(success, type_, kwargs, result=None, exception_info=None, description=None):
    return ExpectationValidationResult(
        success=success,
        expectation_config=ExpectationConfiguration(
            type=type_, kwargs=kwargs, description=description
        ),
        result=result or {},
        exception_info=exception_info or {"raised_exception": False},
    )


def suite_result(*outcomes):
    return ExpectationSuiteValidationResult(
        success=all(o.success for o in outcomes),
        results=list(outcomes),
        suite_name="silver.trades",
        statistics={"evaluated_expectations": len(outcomes)},
    )


def test_a_per_row_rule_reports_count_share_and_a_few_values():
    result = suite_result(
        outcome(
            False,
            "expect_column_values_to_be_between",
            {"column": "qty_e8", "min_value": 0},
            {
                "element_count": 1000,
                "unexpected_count": 4,
                "unexpected_percent": 0.4,
                "partial_unexpected_list": [np.int64(-5), -6, -7, -8],
            },
            description="a trade has size",
        ),
        outcome(True, "expect_column_values_to_be_unique", {"column": "agg_trade_id"}),
    )
    report = quality_report(result, rows=1000)
    assert not report.passed
    assert report.evaluated == 2
    assert report.failed == [
        FailedExpectation(
            expectation="expect_column_values_to_be_between",
            column="qty_e8",
            observed="4 unexpected of 1000 (0.4 %), e.g. -5, -6, -7",
            description="a trade has size",
            unexpected_count=4,
        )
    ]


def test_a_mostly_rule_reports_the_allowed_share():
    result = suite_result(
        outcome(
            False,
            "expect_column_values_to_not_be_null",
            {"column": "ret_1s", "mostly": 0.99},
            {
                "element_count": 100,
                "unexpected_count": 2,
                "unexpected_percent": 2.0,
                "partial_unexpected_list": [None, float("nan")],
            },
        )
    )
    (failure,) = quality_report(result, rows=100).failed
    assert failure.observed == "2 unexpected of 100 (2 %, allowed 1 %)"  # no "e.g. nan"


def test_a_column_pair_is_named_by_both_columns():
    result = suite_result(
        outcome(
            False,
            "expect_column_pair_values_a_to_be_greater_than_b",
            {"column_A": "last_trade_id", "column_B": "first_trade_id"},
            {"element_count": 10, "unexpected_count": 1, "unexpected_percent": 10.0},
        )
    )
    assert quality_report(result, rows=10).failed[0].column == "last_trade_id,first_trade_id"


def test_a_column_set_mismatch_names_missing_and_unexpected_columns():
    result = suite_result(
        outcome(
            False,
            "expect_table_columns_to_match_set",
            {"column_set": ["symbol", "price_e8"]},
            {
                "observed_value": ["price_e8", "colour"],
                "details": {"mismatched": {"unexpected": ["colour"], "missing": ["symbol"]}},
            },
        )
    )
    (failure,) = quality_report(result, rows=1).failed
    assert failure.column is None
    assert failure.observed == "unexpected ['colour']; missing ['symbol']"
    assert failure.unexpected_count is None


@pytest.mark.parametrize(
    "exception_info",
    [
        {"raised_exception": True, "exception_message": 'The column "symbol" does not exist.'},
        {
            "('column_values.nonnull', 'abc')": {
                "raised_exception": True,
                "exception_message": 'The column "symbol" does not exist.',
            }
        },
    ],
)
def test_an_expectation_that_raised_reports_its_error(exception_info):
    result = suite_result(
        outcome(
            False,
            "expect_column_values_to_not_be_null",
            {"column": "symbol"},
            exception_info=exception_info,
        )
    )
    (failure,) = quality_report(result, rows=1).failed
    assert failure.observed == 'error: The column "symbol" does not exist.'


def test_metadata_is_flat_json_safe_and_one_line_per_failure():
    report = QualityReport(
        suite="silver.bars_1s",
        passed=False,
        evaluated=60,
        failed=[
            FailedExpectation("expect_column_values_to_be_unique", "ts_sec", "1 unexpected"),
            FailedExpectation("expect_table_columns_to_match_set", None, "missing ['ts']"),
        ],
        rows=86_400,
    )
    metadata = report.as_metadata()
    assert metadata == {
        "suite": "silver.bars_1s",
        "passed": False,
        "rows": 86_400,
        "evaluated": 60,
        "failed": 2,
        "failed.00": "expect_column_values_to_be_unique(ts_sec): 1 unexpected",
        "failed.01": "expect_table_columns_to_match_set: missing ['ts']",
    }
    assert json.loads(json.dumps(metadata)) == metadata
