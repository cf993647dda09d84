"""The warning throttle: one line per key per interval, the rest counted."""

from __future__ import annotations

import logging

from realtime.log_throttle import WarningThrottle


def test_the_throttle_lets_one_warning_per_interval_through_and_counts_the_rest() -> None:
    throttle = WarningThrottle(interval_s=10.0)
    assert throttle.allow("TruncatedFrame", 0.0) == 0
    assert throttle.allow("TruncatedFrame", 1.0) is None
    assert throttle.allow("TruncatedFrame", 9.9) is None
    assert throttle.allow("UnknownTemplate", 5.0) == 0  # each error type on its own
    assert throttle.allow("TruncatedFrame", 10.0) == 2
    assert throttle.allow("TruncatedFrame", 20.5) == 0


def test_warn_logs_once_per_interval_with_the_count_held_back(caplog) -> None:
    throttle = WarningThrottle(interval_s=10.0)
    log = logging.getLogger("test.throttle")
    with caplog.at_level(logging.WARNING, logger="test.throttle"):
        for now_s in (0.0, 1.0, 2.0, 10.0):
            throttle.warn(log, "quarantine full; event dropped", {"doubt": "first_id"}, now_s=now_s)
    assert [(r.message, r.doubt, r.suppressed) for r in caplog.records] == [  # type: ignore[attr-defined]
        ("quarantine full; event dropped", "first_id", 0),
        ("quarantine full; event dropped", "first_id", 2),
    ]
