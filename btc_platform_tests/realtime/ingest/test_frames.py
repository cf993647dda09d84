"""Text frames (the serverShutdown notice among control replies) and the warning throttle."""

from __future__ import annotations

import pytest

from realtime.ingest.frames import ServerShutdown, WarningThrottle, parse_text_frame


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"e":"serverShutdown","E":1767225600123}', ServerShutdown(1767225600123)),
        ('{"e":"serverShutdown"}', ServerShutdown(None)),
        ('{"e":"serverShutdown","E":true}', ServerShutdown(None)),
        ('{"result":null,"id":1}', None),
        ('{"code":2,"msg":"Invalid request"}', None),
        ("[1, 2]", None),
        ("{not json", None),
    ],
)
def test_only_the_shutdown_notice_is_recognised(text: str, expected: ServerShutdown | None):
    assert parse_text_frame(text) == expected


def test_the_throttle_lets_one_warning_per_interval_through_and_counts_the_rest() -> None:
    throttle = WarningThrottle(interval_s=10.0)
    assert throttle.allow("TruncatedFrame", 0.0) == 0
    assert throttle.allow("TruncatedFrame", 1.0) is None
    assert throttle.allow("TruncatedFrame", 9.9) is None
    assert throttle.allow("UnknownTemplate", 5.0) == 0  # each error type on its own
    assert throttle.allow("TruncatedFrame", 10.0) == 2
    assert throttle.allow("TruncatedFrame", 20.5) == 0
