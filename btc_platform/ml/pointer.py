"""Which model serves: the pointer per symbol, and the stage transitions that move it.

A version moves candidate → shadow → canary → production, one stage at a time, and only
if its gate said it is promotable. Production keeps the versions it replaced, so a
rollback is one step back. These are pure functions over a frozen ``ModelPointer``; the
store and Redis publish the result.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

# The pointer itself is the live service's to read, so it lives in realtime; the names stay
# importable from here for the batch side.
from realtime.inference.pointer import ModelPointer, Stage

__all__ = ["ORDER", "ModelPointer", "PromotionRefused", "Stage", "advance", "rollback"]

ORDER = (Stage.CANDIDATE, Stage.SHADOW, Stage.CANARY, Stage.PRODUCTION)


class PromotionRefused(ValueError):
    """A transition the rules do not allow; the message says which rule."""


def advance(
    pointer: ModelPointer, version: str, *, promotable: bool, now: dt.datetime
) -> ModelPointer:
    """Move ``version`` one stage up (candidate → shadow → canary → production)."""
    if not promotable:
        raise PromotionRefused(f"{version} is not promotable: its gate refused it")
    current = pointer.stage_of(version)
    if current is Stage.PRODUCTION:
        raise PromotionRefused(f"{version} is already in production")
    if version in pointer.previous:
        # A version that served before returns only by a rollback, which keeps the history.
        raise PromotionRefused(f"{version} served before; roll back to return to it")
    target = ORDER[ORDER.index(current) + 1]
    values: dict[str, object] = {current.value: None} if current is not Stage.CANDIDATE else {}
    if target is Stage.PRODUCTION and pointer.production is not None:
        values["previous"] = (*pointer.previous, pointer.production)
    values[target.value] = version
    return _recorded(replace(pointer, **values), version, target, "promote", now)


def rollback(pointer: ModelPointer, *, now: dt.datetime) -> ModelPointer:
    """Put the previous production version back; the current one leaves production."""
    if not pointer.previous:
        raise PromotionRefused(f"{pointer.symbol} has no earlier production version")
    restored = pointer.previous[-1]
    rolled = replace(pointer, production=restored, previous=pointer.previous[:-1])
    return _recorded(rolled, restored, Stage.PRODUCTION, "rollback", now)


def _recorded(
    pointer: ModelPointer, version: str, stage: Stage, action: str, now: dt.datetime
) -> ModelPointer:
    at = now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    entry = {"at": at, "version": version, "stage": stage.value, "action": action}
    return replace(pointer, updated_at=at, history=(*pointer.history, entry))
