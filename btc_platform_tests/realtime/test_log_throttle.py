"""The warning throttle: one line per key per interval, the rest counted."""

from __future__ import annotations

from realtime.log_throttle import WarningThrottle


def test_the_throttle_lets_one_warning_per_interval_through_and_counts_the_rest() -> None:
    throttle = WarningThrottle(interval_s=10.0)
    assert throttle.allow("TruncatedFrame", 0.0) == 0
    assert throttle.allow("TruncatedFrame", 1.0) is None
    assert throttle.allow("TruncatedFrame", 9.9) is None
    assert throttle.allow("UnknownTemplate", 5.0) == 0  # each error type on its own
    assert throttle.allow("TruncatedFrame", 10.0) == 2
    assert throttle.allow("TruncatedFrame", 20.5) == 0
