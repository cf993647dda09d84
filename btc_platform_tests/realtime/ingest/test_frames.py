"""Text frames: the serverShutdown notice among control replies."""

from __future__ import annotations

import pytest

from realtime.ingest.frames import ServerShutdown, parse_text_frame


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
