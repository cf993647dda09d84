"""Faults the local exchange injects: parsed from JSON, applied per stream or per request.

A fault is a plain JSON object, the same whether it comes from a run's script
(``--faults script.json``: a list, each with ``at_s`` = market seconds after the live start)
or from ``POST /admin/faults`` at runtime (applied at once)::

    {"fault": "drop", "stream": "btcusdt@depth", "count": 3}
    {"fault": "duplicate" | "reorder" | "truncate", "stream": ..., "count": n, "keep_bytes": k}
    {"fault": "stall", "stream": "btcusdt@trade", "seconds": 5}
    {"fault": "time_shift", "stream": ..., "count": n, "shift_s": 86400}   # times moved
    {"fault": "id_jump", "stream": "btcusdt@trade", "count": 1, "jump": 10**12}
    {"fault": "garbage", "stream": ..., "count": n, "seed": 0}  # random-byte frames added
    {"fault": "disconnect"}                          # cut every stream connection
    {"fault": "server_shutdown"}                     # the serverShutdown notice
    {"fault": "rest_status", "status": 429 | 418, "count": n, "retry_after_s": s}
    {"fault": "withhold", "ids": "trade" | "agg_trade", "first_id": a, "last_id": b}
    {"fault": "corrupt_archive", "kind": "aggTrades", "date": "2026-01-01"}
    {"fault": "clear"}                               # lift every active fault

Counted faults act on the next ``count`` frames of the stream, for every subscriber alike,
so a test knows exactly which frames went missing. ``time_shift`` and ``id_jump`` send
well-formed frames whose values lie (``frame_edits``); the exchange's tape, REST and archive
files keep the truth, so whatever a client believed from them shows against the tape.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from realtime.sim.frame_edits import garbage_frame, jump_trade_ids, shift_times


class FaultSpecError(ValueError):
    """A fault description that cannot be applied; the message names the field."""


class FaultKind(StrEnum):
    DROP = "drop"
    DUPLICATE = "duplicate"
    REORDER = "reorder"
    TRUNCATE = "truncate"
    STALL = "stall"
    TIME_SHIFT = "time_shift"
    ID_JUMP = "id_jump"
    GARBAGE = "garbage"
    DISCONNECT = "disconnect"
    SERVER_SHUTDOWN = "server_shutdown"
    REST_STATUS = "rest_status"
    WITHHOLD = "withhold"
    CORRUPT_ARCHIVE = "corrupt_archive"
    CLEAR = "clear"


STREAM_FAULTS = frozenset(
    {
        FaultKind.DROP,
        FaultKind.DUPLICATE,
        FaultKind.REORDER,
        FaultKind.TRUNCATE,
        FaultKind.STALL,
        FaultKind.TIME_SHIFT,
        FaultKind.ID_JUMP,
        FaultKind.GARBAGE,
    }
)
ID_KINDS = ("trade", "agg_trade")
MAX_SHIFT_S = 100 * 366 * 86_400
"""A century: far enough for any plausibility test, and a moved time stays an int64."""
MAX_ID_JUMP = 2**53
"""Beyond any real trade id, and the jumped id stays an int64."""


@dataclass(frozen=True)
class Fault:
    """One parsed fault; only the fields its kind uses are set."""

    kind: FaultKind
    at_s: float | None = None
    stream: str | None = None
    count: int = 1
    keep_bytes: int | None = None
    seconds: float = 0.0
    status: int | None = None
    retry_after_s: int = 60
    ids: str | None = None
    first_id: int | None = None
    last_id: int | None = None
    archive_kind: str | None = None
    date: dt.date | None = None
    shift_us: int = 0
    jump: int = 0
    seed: int = 0


def parse_fault(spec: Any) -> Fault:
    """A ``Fault`` from its JSON object; raises ``FaultSpecError`` naming what is wrong."""
    if not isinstance(spec, dict):
        raise FaultSpecError(f"a fault is a JSON object, got {type(spec).__name__}")
    try:
        kind = FaultKind(spec.get("fault"))
    except ValueError:
        known = ", ".join(kind.value for kind in FaultKind)
        raise FaultSpecError(f"'fault' must be one of {known}; got {spec.get('fault')!r}") from None
    fields: dict[str, Any] = {"kind": kind, "at_s": _number(spec, "at_s", None)}
    if kind in STREAM_FAULTS:
        stream = spec.get("stream")
        if not isinstance(stream, str) or "@" not in stream:
            raise FaultSpecError(f"{kind}: 'stream' must name a stream like btcusdt@depth")
        fields["stream"] = stream
        fields["count"] = _positive_int(spec, "count", 1)
        if kind is FaultKind.TRUNCATE and "keep_bytes" in spec:
            fields["keep_bytes"] = _positive_int(spec, "keep_bytes", 1)
        if kind is FaultKind.STALL:
            fields["seconds"] = _number(spec, "seconds", None)
            if fields["seconds"] is None or fields["seconds"] <= 0:
                raise FaultSpecError("stall: 'seconds' must be a positive number")
        elif kind is FaultKind.TIME_SHIFT:
            shift_s = _number(spec, "shift_s", None)
            if shift_s is None or shift_s == 0 or abs(shift_s) > MAX_SHIFT_S:
                raise FaultSpecError(
                    f"time_shift: 'shift_s' must be a non-zero number of seconds, at most "
                    f"{MAX_SHIFT_S} either way"
                )
            fields["shift_us"] = round(shift_s * 1_000_000)
        elif kind is FaultKind.ID_JUMP:
            if not stream.endswith("@trade"):
                raise FaultSpecError("id_jump: 'stream' must be a @trade stream (trade ids)")
            jump = spec.get("jump")
            if not _is_int(jump) or jump == 0 or abs(jump) > MAX_ID_JUMP:
                raise FaultSpecError("id_jump: 'jump' must be a non-zero integer, |jump| <= 2**53")
            fields["jump"] = jump
        elif kind is FaultKind.GARBAGE:
            seed = spec.get("seed", 0)
            if not _is_int(seed) or seed < 0:
                raise FaultSpecError(f"garbage: 'seed' must be an integer >= 0, got {seed!r}")
            fields["seed"] = seed
    elif kind is FaultKind.REST_STATUS:
        status = spec.get("status")
        if status not in (429, 418):
            raise FaultSpecError("rest_status: 'status' must be 429 or 418")
        fields.update(
            status=status,
            count=_positive_int(spec, "count", 1),
            retry_after_s=_positive_int(spec, "retry_after_s", 60),
        )
    elif kind is FaultKind.WITHHOLD:
        if spec.get("ids") not in ID_KINDS:
            raise FaultSpecError(f"withhold: 'ids' must be one of {ID_KINDS}")
        first_id, last_id = spec.get("first_id"), spec.get("last_id")
        # bool is an int subclass: JSON true must not pass as id 1.
        if not (_is_int(first_id) and _is_int(last_id) and first_id <= last_id):
            raise FaultSpecError("withhold: 'first_id' <= 'last_id' must be integers")
        fields.update(ids=spec["ids"], first_id=first_id, last_id=last_id)
    elif kind is FaultKind.CORRUPT_ARCHIVE:
        if spec.get("kind") not in ("aggTrades", "trades", "klines"):
            raise FaultSpecError("corrupt_archive: 'kind' must be aggTrades, trades or klines")
        try:
            fields["date"] = dt.date.fromisoformat(str(spec.get("date")))
        except ValueError:
            raise FaultSpecError("corrupt_archive: 'date' must be YYYY-MM-DD") from None
        fields["archive_kind"] = spec["kind"]
    return Fault(**fields)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(spec: dict[str, Any], name: str, default: float | None) -> float | None:
    value = spec.get(name, default)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise FaultSpecError(f"'{name}' must be a number, got {value!r}")
    return None if value is None else float(value)


def _positive_int(spec: dict[str, Any], name: str, default: int) -> int:
    value = spec.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise FaultSpecError(f"'{name}' must be a positive integer, got {value!r}")
    return value


@dataclass
class StreamFaults:
    """The active faults of one stream: what becomes of each frame on its way out.

    ``process`` returns the frames to send now, in order: none (dropped, held for a
    reorder, or stalled), the frame, an edited or cut frame, or several (a random-byte frame
    before the real one, a duplicate, a released reorder, the backlog of a stall that has
    ended). One counted fault acts on a frame, in the order of ``_one``; a re-armed
    ``time_shift``/``id_jump`` applies its newest shift or jump to every frame still due.
    """

    drop: int = 0
    duplicate: int = 0
    reorder: int = 0
    truncate: int = 0
    keep_bytes: int | None = None
    time_shift: int = 0
    shift_us: int = 0
    id_jump: int = 0
    jump: int = 0
    garbage: int = 0
    rng: random.Random = field(default_factory=random.Random)
    stall_until: float = 0.0
    held: bytes | None = None
    stalled: list[bytes] = field(default_factory=list)
    dropped_total: int = 0

    def arm(self, fault: Fault, now: float) -> None:
        """Add a counted fault to this stream (counts of the same kind add up)."""
        if fault.kind is FaultKind.DROP:
            self.drop += fault.count
        elif fault.kind is FaultKind.DUPLICATE:
            self.duplicate += fault.count
        elif fault.kind is FaultKind.REORDER:
            self.reorder += fault.count
        elif fault.kind is FaultKind.TRUNCATE:
            self.truncate += fault.count
            self.keep_bytes = fault.keep_bytes
        elif fault.kind is FaultKind.STALL:
            self.stall_until = max(self.stall_until, now + fault.seconds)
        elif fault.kind is FaultKind.TIME_SHIFT:
            self.time_shift += fault.count
            self.shift_us = fault.shift_us
        elif fault.kind is FaultKind.ID_JUMP:
            self.id_jump += fault.count
            self.jump = fault.jump
        elif fault.kind is FaultKind.GARBAGE:
            self.garbage += fault.count
            self.rng = random.Random(fault.seed)

    @property
    def idle(self) -> bool:
        """No fault armed and nothing held back."""
        counted = (
            self.drop,
            self.duplicate,
            self.reorder,
            self.truncate,
            self.time_shift,
            self.id_jump,
            self.garbage,
        )
        return (
            not any(counted) and self.held is None and not self.stalled and self.stall_until == 0.0
        )

    def process(self, frame: bytes, now: float) -> list[bytes]:
        if now < self.stall_until:
            self.stalled.append(frame)
            return []
        self.stall_until = 0.0
        out = self.stalled
        self.stalled = []
        out.extend(self._one(frame))
        return out

    def _one(self, frame: bytes) -> list[bytes]:
        if self.drop:
            self.drop -= 1
            self.dropped_total += 1
            return []
        if self.time_shift:
            self.time_shift -= 1
            return [shift_times(frame, self.shift_us)]
        if self.id_jump:
            self.id_jump -= 1
            return [jump_trade_ids(frame, self.jump)]
        if self.garbage:
            self.garbage -= 1
            return [garbage_frame(len(frame), self.rng), frame]
        if self.truncate:
            self.truncate -= 1
            keep = self.keep_bytes if self.keep_bytes is not None else len(frame) // 2
            return [frame[: min(keep, len(frame) - 1)]]
        if self.duplicate:
            self.duplicate -= 1
            return [frame, frame]
        if self.held is not None:
            held, self.held = self.held, None
            return [frame, held]
        if self.reorder:
            self.reorder -= 1
            self.held = frame
            return []
        return [frame]

    def release(self) -> list[bytes]:
        """Frames held back (a reorder or a stall), to send when the stream is cleared."""
        out = self.stalled + ([self.held] if self.held is not None else [])
        self.stalled, self.held = [], None
        return out
