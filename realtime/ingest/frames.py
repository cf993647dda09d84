"""What arrives on an SBE stream connection besides market data, and how failures are told.

Binary frames are SBE messages (``realtime.binance.sbe.decode``). Text frames are JSON:
replies to control requests, and the ``serverShutdown`` notice (SPEC 1.3), which asks for a
replacement connection at once.
"""

from __future__ import annotations

import json
from typing import NamedTuple


class ServerShutdown(NamedTuple):
    """``{"e":"serverShutdown","E":<ms>}``: the server is about to go down."""

    event_time_ms: int | None


def parse_text_frame(text: str) -> ServerShutdown | None:
    """The shutdown notice in a text frame, or ``None`` for anything else (control replies)."""
    try:
        payload = json.loads(text)
    except ValueError:
        return None
    if not isinstance(payload, dict) or payload.get("e") != "serverShutdown":
        return None
    event_time = payload.get("E")
    is_int = isinstance(event_time, int) and not isinstance(event_time, bool)
    return ServerShutdown(event_time if is_int else None)
