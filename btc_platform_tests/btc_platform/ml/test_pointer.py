"""Stage transitions of the model pointer: one stage at a time, only if promotable, and a
rollback that is one step back."""

from __future__ import annotations

import datetime as dt

import pytest

from btc_platform.ml.pointer import ModelPointer, PromotionRefused, Stage, advance, rollback

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
