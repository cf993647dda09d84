"""A validation result in the few words an asset check shows: what failed, where, how badly.

GX results are large nested objects (every kwarg, up to twenty unexpected values per
expectation, tracebacks); a check's metadata wants one flat line per broken rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from great_expectations.core import (
        ExpectationSuiteValidationResult,
        ExpectationValidationResult,
    )

MAX_EXAMPLES = 3
"""Unexpected values quoted per failed expectation."""
MAX_TEXT = 200
"""Characters of an observed value or error message kept in a summary."""

MetadataValue = str | int | float | bool


@dataclass(frozen=True)
class FailedExpectation:
    """One broken rule: the GX expectation type, its column(s) and what was observed."""

    expectation: str
    """GX expectation type, e.g. ``expect_column_values_to_be_unique``."""
    column: str | None
    """The column, ``"A,B"`` for a column pair, None for a table-level expectation."""
    observed: str
    """Short summary: unexpected count and share with a few values, an observed value, or
    the error an expectation raised (e.g. on a missing column)."""
    description: str | None = None
    """The rule in the domain's words, from the suite."""
    unexpected_count: int | None = None
    """Rows that broke a per-row rule; None for aggregate rules and errors."""

    def summary(self) -> str:
        where = f"({self.column})" if self.column else ""
        why = f" [{self.description}]" if self.description else ""
        return f"{self.expectation}{where}: {self.observed}{why}"


@dataclass(frozen=True)
class QualityReport:
    """The verdict of one table's suite on one batch of rows."""

    suite: str
    passed: bool
    evaluated: int
    """Expectations evaluated."""
    failed: list[FailedExpectation]
    rows: int

    def as_metadata(self) -> dict[str, MetadataValue]:
        """Flat, JSON-safe metadata for a Dagster ``AssetCheckResult``.

        ``failed.<n>`` keys (zero-padded, so they sort) carry one summary line each.
        """
        metadata: dict[str, MetadataValue] = {
            "suite": self.suite,
            "passed": self.passed,
            "rows": self.rows,
            "evaluated": self.evaluated,
            "failed": len(self.failed),
        }
        for index, failure in enumerate(self.failed):
            metadata[f"failed.{index:02d}"] = failure.summary()
        return metadata


def quality_report(result: ExpectationSuiteValidationResult, rows: int) -> QualityReport:
    """Condense a GX suite result on ``rows`` rows into a ``QualityReport``."""
    return QualityReport(
        suite=result.suite_name,
        passed=bool(result.success),
        evaluated=int(result.statistics["evaluated_expectations"]),
        failed=[_failure(outcome) for outcome in result.results if not outcome.success],
        rows=rows,
    )


def _failure(outcome: ExpectationValidationResult) -> FailedExpectation:
    config = outcome.expectation_config
    kwargs = config.kwargs
    column = kwargs.get("column")
    if column is None and "column_A" in kwargs:
        column = f"{kwargs['column_A']},{kwargs['column_B']}"
    details = outcome.result or {}
    error = _error_message(outcome.exception_info)
    unexpected = details.get("unexpected_count")
    if error is not None:
        observed = f"error: {error}"
    elif unexpected is not None:
        observed = _unexpected_summary(details, kwargs.get("mostly"))
    else:
        observed = _observed_summary(details)
    return FailedExpectation(
        expectation=config.type,
        column=column,
        observed=observed,
        description=config.description,
        unexpected_count=None if error is not None or unexpected is None else int(unexpected),
    )


def _error_message(exception_info: dict[str, Any] | None) -> str | None:
    """The first error message, if the expectation raised instead of evaluating.

    GX reports one ``{raised_exception, exception_message}`` dict, or one such dict per
    metric that failed to compute.
    """
    if not exception_info:
        return None
    infos = (
        [exception_info]
        if "raised_exception" in exception_info
        else [info for info in exception_info.values() if isinstance(info, dict)]
    )
    for info in infos:
        if info.get("raised_exception"):
            message = str(info.get("exception_message") or "unknown error")
            return _clip(message.splitlines()[0].removeprefix("Error: "))
    return None


def _unexpected_summary(details: dict[str, Any], mostly: float | None) -> str:
    count = int(details["unexpected_count"])
    total = details.get("element_count")
    share = details.get("unexpected_percent")
    text = f"{count} unexpected"
    if total is not None:
        text += f" of {total}"
    if share is not None:
        text += f" ({share:.3g} %"
        text += f", allowed {100 * (1 - mostly):.3g} %)" if mostly is not None else ")"
    # A null or NaN example says nothing a not-null rule's name does not already say.
    examples = [
        value for value in details.get("partial_unexpected_list") or [] if not _missing(value)
    ][:MAX_EXAMPLES]
    if examples:
        text += ", e.g. " + ", ".join(_clip(_quoted(value)) for value in examples)
    return text


def _observed_summary(details: dict[str, Any]) -> str:
    mismatched = (details.get("details") or {}).get("mismatched")
    if mismatched:
        parts = [f"{kind} {sorted(names)}" for kind, names in mismatched.items() if names]
        return _clip("; ".join(parts))
    return _clip(f"observed {_quoted(details.get('observed_value'))}")


def _plain(value: Any) -> Any:
    """NumPy scalars as Python values, so a summary reads ``5``, not ``np.int64(5)``."""
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def _quoted(value: Any) -> str:
    """Strings quoted (so ``''`` and ``' '`` show); numbers, times and decimals as written."""
    value = _plain(value)
    return repr(value) if isinstance(value, str) else str(value)


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # a tuple of a column pair
        return False


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"
