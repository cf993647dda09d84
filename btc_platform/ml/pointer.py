"""Which model serves: the pointer per symbol, and the stage transitions that move it.

A version moves candidate → shadow → canary → production, one stage at a time, and only
if its gate said it is promotable. Production keeps the versions it replaced, so a
rollback is one step back. A version that was rolled back, or that its gate refused, is
promoted only when forced with a reason, which the pointer's history keeps. These are pure
functions over a frozen ``ModelPointer``; ``btc_platform.ml.serving`` writes the result.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import replace

# The pointer itself is the live service's to read, so it lives in realtime; the names stay
# importable from here for the batch side.
from realtime.inference.pointer import ModelPointer, Stage

__all__ = [
    "ORDER",
    "ModelPointer",
    "PromotionRefused",
    "Stage",
    "advance",
    "promoted_through",
    "rollback",
    "serving_stages",
    "withdrawn",
]

ORDER = (Stage.CANDIDATE, Stage.SHADOW, Stage.CANARY, Stage.PRODUCTION)


class PromotionRefused(ValueError):
    """A transition the rules do not allow; the message says which rule."""


def advance(
    pointer: ModelPointer,
    version: str,
    *,
    promotable: bool,
    now: dt.datetime,
    force: str | None = None,
) -> ModelPointer:
    """Move ``version`` one stage up (candidate → shadow → canary → production).

    ``force`` is an operator's reason to promote a version its gate refused or that was
    rolled back; it is recorded in the transition. Nothing else can be forced.
    """
    if force is not None and not force.strip():
        raise PromotionRefused("a forced promotion needs a reason")
    if not promotable and force is None:
        raise PromotionRefused(
            f"{version} is not promotable: its gate refused it (force it with a reason to "
            "promote it anyway)"
        )
    if version in withdrawn(pointer) and force is None:
        raise PromotionRefused(
            f"{version} was rolled back out of production (force it with a reason to "
            "promote it again)"
        )
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
    extra = {"forced": force} if force is not None else {}
    return _recorded(replace(pointer, **values), version, target, "promote", now, extra)


def promoted_through(
    pointer: ModelPointer,
    version: str,
    through: Stage,
    *,
    promotable: bool,
    now: dt.datetime,
    force: str | None = None,
) -> ModelPointer:
    """``version`` advanced stage by stage until it is at ``through``, every step recorded.

    Refuses a version already at or above ``through``: a promotion never moves it down, and
    never past the stage it was asked for.
    """
    if through not in ORDER[1:]:
        raise PromotionRefused(f"{through} is not a stage a version is promoted to")
    if ORDER.index(pointer.stage_of(version)) >= ORDER.index(through):
        raise PromotionRefused(f"{version} is already {pointer.stage_of(version)}")
    while pointer.stage_of(version) is not through:
        pointer = advance(pointer, version, promotable=promotable, now=now, force=force)
    return pointer


def rollback(pointer: ModelPointer, *, now: dt.datetime) -> ModelPointer:
    """Put the previous production version back; the current one leaves production."""
    if not pointer.previous:
        raise PromotionRefused(f"{pointer.symbol} has no earlier production version")
    restored = pointer.previous[-1]
    rolled = replace(pointer, production=restored, previous=pointer.previous[:-1])
    extra = {"replaced": pointer.production}
    return _recorded(rolled, restored, Stage.PRODUCTION, "rollback", now, extra)


def withdrawn(pointer: ModelPointer) -> frozenset[str]:
    """Versions rolled back out of production and not forced back since, from the history.

    Replays the history rather than trusting one field, so pointers written before rollbacks
    named what they replaced are read the same way.
    """
    production: str | None = None
    versions: set[str] = set()
    for transition in pointer.history:
        version = transition.get("version")
        if transition.get("action") == "rollback":
            if production is not None:
                versions.add(production)
            production = version
        elif transition.get("action") == "promote":
            if transition.get("forced"):
                versions.discard(version)
            if transition.get("stage") == Stage.PRODUCTION.value:
                production = version
    return frozenset(versions)


def serving_stages(pointer: ModelPointer, versions: Iterable[str]) -> dict[str, Stage]:
    """The registry stage ``pointer`` implies for each of ``versions``.

    Retired: it left production (replaced, kept for a rollback, or rolled back). Candidate:
    the pointer does not name it (never promoted, or displaced before production). The
    history is replayed once for all versions: both grow with every training run.
    """
    gone = withdrawn(pointer).union(pointer.previous)
    stages = {}
    for version in versions:
        stage = pointer.stage_of(version)
        stages[version] = Stage.RETIRED if stage is Stage.CANDIDATE and version in gone else stage
    return stages


def _recorded(
    pointer: ModelPointer,
    version: str,
    stage: Stage,
    action: str,
    now: dt.datetime,
    extra: dict[str, object],
) -> ModelPointer:
    at = now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    entry = {"at": at, "version": version, "stage": stage.value, "action": action, **extra}
    return replace(pointer, updated_at=at, history=(*pointer.history, entry))
