"""Stage transitions of the model pointer: one stage at a time, only if promotable, and a
rollback that is one step back."""

from __future__ import annotations

import datetime as dt

import pytest

from btc_platform.ml.pointer import (
    ModelPointer,
    PromotionRefused,
    Stage,
    advance,
    promoted_through,
    rollback,
    serving_stages,
    withdrawn,
)

NOW = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)


def promoted(pointer: ModelPointer, version: str) -> ModelPointer:
    while pointer.stage_of(version) is not Stage.PRODUCTION:
        pointer = advance(pointer, version, promotable=True, now=NOW)
    return pointer


def test_a_version_moves_one_stage_at_a_time():
    pointer = ModelPointer("BTCUSDT")
    stages = []
    for _ in range(3):
        pointer = advance(pointer, "v1", promotable=True, now=NOW)
        stages.append(pointer.stage_of("v1"))
    assert stages == [Stage.SHADOW, Stage.CANARY, Stage.PRODUCTION]
    assert (pointer.shadow, pointer.canary, pointer.production) == (None, None, "v1")
    assert [h["stage"] for h in pointer.history] == ["shadow", "canary", "production"]


def test_an_unpromotable_version_is_refused_and_the_pointer_is_unchanged():
    pointer = promoted(ModelPointer("BTCUSDT"), "v1")
    with pytest.raises(PromotionRefused, match="not promotable"):
        advance(pointer, "v2", promotable=False, now=NOW)


def test_production_keeps_what_it_replaced_and_a_rollback_restores_it():
    pointer = promoted(promoted(ModelPointer("BTCUSDT"), "v1"), "v2")
    assert pointer.production == "v2"
    assert pointer.previous == ("v1",)
    back = rollback(pointer, now=NOW)
    assert back.production == "v1"
    assert back.previous == ()
    assert back.history[-1]["action"] == "rollback"
    with pytest.raises(PromotionRefused, match="no earlier production version"):
        rollback(back, now=NOW)


def test_a_version_that_served_returns_only_by_rollback():
    pointer = promoted(promoted(ModelPointer("BTCUSDT"), "v1"), "v2")
    with pytest.raises(PromotionRefused, match="roll back"):
        advance(pointer, "v1", promotable=True, now=NOW)
    with pytest.raises(PromotionRefused, match="already in production"):
        advance(pointer, "v2", promotable=True, now=NOW)


def test_the_pointer_round_trips_through_json():
    pointer = promoted(promoted(ModelPointer("BTCUSDT"), "v1"), "v2")
    pointer = advance(pointer, "v3", promotable=True, now=NOW)
    assert ModelPointer.from_json(pointer.to_json()) == pointer


def test_a_rolled_back_version_returns_only_when_forced_and_the_reason_is_kept():
    pointer = rollback(promoted(promoted(ModelPointer("BTCUSDT"), "v1"), "v2"), now=NOW)
    assert pointer.history[-1]["replaced"] == "v2"
    assert withdrawn(pointer) == {"v2"}
    with pytest.raises(PromotionRefused, match="rolled back"):
        advance(pointer, "v2", promotable=True, now=NOW)
    with pytest.raises(PromotionRefused, match="needs a reason"):
        advance(pointer, "v2", promotable=True, now=NOW, force="  ")

    forced = advance(pointer, "v2", promotable=True, now=NOW, force="feed fixed")
    assert forced.shadow == "v2"
    assert forced.history[-1]["forced"] == "feed fixed"
    assert withdrawn(forced) == set()  # forced once: its later stages need no force
    assert promoted(forced, "v2").production == "v2"


def test_withdrawn_reads_rollbacks_from_the_history_alone():
    """Pointers written before rollbacks named what they replaced are read the same way."""
    pointer = promoted(promoted(promoted(ModelPointer("BTCUSDT"), "v1"), "v2"), "v3")
    pointer = rollback(rollback(pointer, now=NOW), now=NOW)
    legacy = ModelPointer(
        pointer.symbol,
        production=pointer.production,
        history=tuple({k: v for k, v in h.items() if k != "replaced"} for h in pointer.history),
    )
    assert withdrawn(pointer) == withdrawn(legacy) == {"v2", "v3"}


def test_a_version_the_gate_refused_is_promoted_only_when_forced():
    pointer = ModelPointer("BTCUSDT")
    with pytest.raises(PromotionRefused, match="gate refused"):
        promoted_through(pointer, "v1", Stage.PRODUCTION, promotable=False, now=NOW)
    forced = promoted_through(
        pointer, "v1", Stage.PRODUCTION, promotable=False, now=NOW, force="judged by hand"
    )
    assert forced.production == "v1"
    assert [h.get("forced") for h in forced.history] == ["judged by hand"] * 3


def test_promoted_through_never_moves_a_version_down_or_past_the_stage_asked_for():
    pointer = promoted_through(
        ModelPointer("BTCUSDT"), "v1", Stage.CANARY, promotable=True, now=NOW
    )
    assert (pointer.canary, pointer.production) == ("v1", None)
    for through in (Stage.SHADOW, Stage.CANARY):
        with pytest.raises(PromotionRefused, match="already canary"):
            promoted_through(pointer, "v1", through, promotable=True, now=NOW)
    with pytest.raises(PromotionRefused, match="not a stage"):
        promoted_through(pointer, "v1", Stage.RETIRED, promotable=True, now=NOW)


def test_the_registry_stage_each_version_gets_from_the_pointer():
    pointer = promoted(promoted(promoted(ModelPointer("BTCUSDT"), "v1"), "v2"), "v3")
    pointer = rollback(pointer, now=NOW)  # v3 out, v2 back; v1 kept for the next rollback
    pointer = advance(pointer, "v4", promotable=True, now=NOW)
    assert serving_stages(pointer, ["v1", "v2", "v3", "v4", "v5"]) == {
        "v1": Stage.RETIRED,
        "v2": Stage.PRODUCTION,
        "v3": Stage.RETIRED,
        "v4": Stage.SHADOW,
        "v5": Stage.CANDIDATE,
    }
