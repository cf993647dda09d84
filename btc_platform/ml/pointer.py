"""Which model serves: the pointer per symbol, and the stage transitions that move it.

A version moves candidate → shadow → canary → production, one stage at a time, and only
if its gate said it is promotable. Production keeps the versions it replaced, so a
rollback is one step back. These are pure functions over a frozen ``ModelPointer``; the
store and Redis publish the result.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field, replace
from enum import StrEnum


class Stage(StrEnum):
    CANDIDATE = "candidate"
    SHADOW = "shadow"
    CANARY = "canary"
    PRODUCTION = "production"
    RETIRED = "retired"
    """Left production (replaced or rolled back); kept in the store and the registry."""


ORDER = (Stage.CANDIDATE, Stage.SHADOW, Stage.CANARY, Stage.PRODUCTION)


class PromotionRefused(ValueError):
    """A transition the rules do not allow; the message says which rule."""


@dataclass(frozen=True)
class ModelPointer:
    """The versions at each serving stage of one symbol, and production's history."""

    symbol: str
    shadow: str | None = None
    canary: str | None = None
    production: str | None = None
    previous: tuple[str, ...] = ()
    """Earlier production versions, newest last (what a rollback returns to)."""
    updated_at: str = ""
    history: tuple[dict, ...] = field(default=())
    """Every transition: ``{"at", "version", "stage", "action"}``, oldest first."""

    def stage_of(self, version: str) -> Stage:
        for stage in (Stage.PRODUCTION, Stage.CANARY, Stage.SHADOW):
            if getattr(self, stage.value) == version:
                return stage
        return Stage.CANDIDATE

    def to_json(self) -> str:
        return json.dumps(
            {
                "symbol": self.symbol,
                "shadow": self.shadow,
                "canary": self.canary,
                "production": self.production,
                "previous": list(self.previous),
                "updated_at": self.updated_at,
                "history": list(self.history),
            },
            indent=2,
        )

    @staticmethod
    def from_json(text: str) -> ModelPointer:
        values = json.loads(text)
        return ModelPointer(
            symbol=values["symbol"],
            shadow=values.get("shadow"),
            canary=values.get("canary"),
            production=values.get("production"),
            previous=tuple(values.get("previous", ())),
            updated_at=values.get("updated_at", ""),
            history=tuple(values.get("history", ())),
        )


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
