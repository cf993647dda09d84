"""Gap events of the live service (Redis stream ``gaps:{SYM}``) and what they ask to reload.

The live service appends one entry per gap it detects: a trade id jump, a depth chain break,
or a silent stream. Every entry names the time range it lost (µs); the lake reloads the
hours that cover it from REST or the archive, so the history has what the stream missed.
"""

from __future__ import annotations

from dataclasses import dataclass

from btc_platform.lakehouse.completeness import US_PER_HOUR


def gaps_key(symbol: str) -> str:
    """The stream's key; the braces are a Redis Cluster hash tag, one slot per symbol."""
    return f"gaps:{{{symbol.upper()}}}"


class MalformedGapEvent(ValueError):
    """A ``gaps:{SYM}`` entry without a usable time range."""


@dataclass(frozen=True)
class GapEvent:
    """One entry of ``gaps:{SYM}``."""

    stream_id: str
    kind: str
    first_time_us: int
    last_time_us: int
    detail: str

    @staticmethod
    def from_entry(stream_id: str, fields: dict[str, str]) -> GapEvent:
        try:
            first = int(fields["first_time_us"])
            last = int(fields["last_time_us"])
        except (KeyError, ValueError) as error:
            raise MalformedGapEvent(f"{stream_id}: {fields!r}: {error}") from error
        if last < first:
            raise MalformedGapEvent(f"{stream_id}: time range ends before it starts")
        detail = ", ".join(
            f"{name}={fields[name]}" for name in ("first_id", "last_id") if name in fields
        )
        return GapEvent(stream_id, fields.get("kind", "unknown"), first, last, detail)

    def hours(self) -> list[int]:
        """Start times (µs) of the hours the lost range touches."""
        first = self.first_time_us // US_PER_HOUR * US_PER_HOUR
        return list(range(first, self.last_time_us + 1, US_PER_HOUR))
