"""Gap events of the live service (Redis stream ``gaps:{SYM}``) and what they ask to reload.

The live service appends one entry per gap it detects: a trade id jump, a depth chain break,
or a silent stream (``realtime.ingest.gaps.GapKind``). Every entry names the time range it
lost (µs); the lake reloads the hours that cover it from REST or the archive, so the history
has what the stream missed.

Anything may write the stream, so an entry is checked before it costs anything: its bytes
must be UTF-8, its times plausible µs epoch times (from Binance's first day to a little past
now; nanoseconds or milliseconds fall outside) and its range at most ``MAX_HOURS_PER_EVENT``
hours. An entry that fails is a ``MalformedGapEvent``: refused, never expanded.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping
from dataclasses import dataclass

from btc_platform.lakehouse.completeness import US_PER_HOUR
from realtime.ingest.gaps import GapKind

BINANCE_FIRST_DAY_US = 1_499_990_400_000_000
"""2017-07-14T00:00Z, the day Binance opened: no trade of any symbol is older."""
FUTURE_TOLERANCE_US = 15 * 60 * 1_000_000
"""How far past the lake's clock an event may end (the service's clock may run ahead)."""
MAX_HOURS_PER_EVENT = 48
"""Hours one event may ask to reload. A longer outage is not a gap the sensor chases: the
scheduled loads of those hours prove them complete or name their holes themselves."""
NOT_REPAIRED_KINDS = frozenset({GapKind.SILENCE.value, GapKind.DEPTH.value})
"""Kinds a reload of bronze.agg_trades cannot help: a silent stream lost nothing, and a
depth chain break lost book diffs, which no REST history holds. A lost trade is reported by
its own ``trade`` event."""
_SHOWN_CHARS = 60
_SHOWN_FIELDS = 8
"""How much of a refused entry a message quotes: enough to find it, bounded for the log."""


def gaps_key(symbol: str) -> str:
    """The stream's key; the braces are a Redis Cluster hash tag, one slot per symbol."""
    return f"gaps:{{{symbol.upper()}}}"


class MalformedGapEvent(ValueError):
    """A ``gaps:{SYM}`` entry without a usable time range (or not text at all)."""


def entry_id(raw_id: bytes | str) -> str:
    """A stream entry's id as text: Redis's own ``ms-seq``, always ASCII."""
    return raw_id.decode("ascii") if isinstance(raw_id, bytes) else raw_id


def decode_fields(stream_id: str, raw_fields: Mapping[bytes | str, bytes | str]) -> dict[str, str]:
    """A stream entry's fields as text; ``MalformedGapEvent`` if any is not UTF-8."""
    try:
        return {_text(name): _text(value) for name, value in raw_fields.items()}
    except UnicodeDecodeError as error:
        raise MalformedGapEvent(
            f"{stream_id}: not UTF-8 ({error.reason} at byte {error.start}): {_shown(raw_fields)}"
        ) from error


@dataclass(frozen=True)
class GapEvent:
    """One entry of ``gaps:{SYM}``; its range spans at most ``MAX_HOURS_PER_EVENT`` hours."""

    stream_id: str
    kind: str
    first_time_us: int
    last_time_us: int
    detail: str

    def __post_init__(self) -> None:
        if self.last_time_us < self.first_time_us:
            raise MalformedGapEvent(f"{self.stream_id}: time range ends before it starts")
        hours = self.last_time_us // US_PER_HOUR - self.first_time_us // US_PER_HOUR + 1
        if hours > MAX_HOURS_PER_EVENT:
            raise MalformedGapEvent(
                f"{self.stream_id}: range of {hours} hours, more than the "
                f"{MAX_HOURS_PER_EVENT} one event may reload"
            )

    @staticmethod
    def from_entry(
        stream_id: str, fields: Mapping[str, str], *, now_us: int | None = None
    ) -> GapEvent:
        """Parse and check one entry; ``now_us`` (default: this clock) bounds its end.

        Times must be µs epoch times in ``[BINANCE_FIRST_DAY_US, now_us +
        FUTURE_TOLERANCE_US]``.
        """
        try:
            first = int(fields["first_time_us"])
            last = int(fields["last_time_us"])
        except (KeyError, ValueError) as error:
            raise MalformedGapEvent(f"{stream_id}: {_shown(fields)}: {error}") from error
        latest_us = (time.time_ns() // 1000 if now_us is None else now_us) + FUTURE_TOLERANCE_US
        for name, value in (("first_time_us", first), ("last_time_us", last)):
            if not BINANCE_FIRST_DAY_US <= value <= latest_us:
                raise MalformedGapEvent(
                    f"{stream_id}: {name}={value} is no µs time between Binance's first day "
                    f"({BINANCE_FIRST_DAY_US}) and now ({latest_us} with tolerance)"
                )
        detail = ", ".join(
            f"{name}={fields[name][:40]}" for name in ("first_id", "last_id") if name in fields
        )
        return GapEvent(stream_id, fields.get("kind", "unknown")[:40], first, last, detail)

    @property
    def needs_reload(self) -> bool:
        """Whether reloading bronze.agg_trades can restore what this gap lost.

        Unknown kinds are reloaded: a wasted reload costs a few requests, a skipped one a hole.
        """
        return self.kind not in NOT_REPAIRED_KINDS

    def hours(self) -> list[int]:
        """Start times (µs) of the hours the lost range touches (at most the bound's)."""
        first = self.first_time_us // US_PER_HOUR * US_PER_HOUR
        return list(range(first, self.last_time_us + 1, US_PER_HOUR))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _shown(fields: Mapping[bytes | str, bytes | str]) -> str:
    """The first few fields, each cut short: a message's size never follows the entry's."""
    shown = ", ".join(
        f"{name[:_SHOWN_CHARS]!r}: {value[:_SHOWN_CHARS]!r}"
        for name, value in itertools.islice(fields.items(), _SHOWN_FIELDS)
    )
    return f"{{{shown[: 4 * _SHOWN_CHARS]}}}"
