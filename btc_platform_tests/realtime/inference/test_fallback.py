"""The fallback controller: every level, the boundaries between them and the transitions of
a service whose hot state comes and goes, on a virtual exchange clock."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from realtime.features.contract import CONTRACT_V1
from realtime.inference.fallback import (
    FallbackController,
    FallbackDecision,
    FallbackLevel,
    FallbackSettings,
    LatestVector,
    TickInputs,
    feature_age_ms,
)
from realtime.inference.prediction import SAFE_MODE

T = 1_767_225_600
"""A feature second; second ``t`` ends at ``t + 1``."""
INPUTS = CONTRACT_V1.model_inputs
K = len(INPUTS)
FRESH, STALE, LOST = 2_500, 10_000, 60_000


def stamp(ts_sec: int) -> int:
    """A vector's values tell its second: ``stamp(second) + position / 100`` (float32-exact
    enough to tell neighbouring seconds apart)."""
    return ts_sec - T + 1000


def vector(ts_sec: int, missing: Iterable[str] = ()) -> np.ndarray:
    """A full contract vector whose values say where they came from."""
    values = np.array([stamp(ts_sec) + i / 100 for i in range(len(CONTRACT_V1.names))])
    for name in missing:
        values[CONTRACT_V1.names.index(name)] = np.nan
    return values


def inputs_of(values: np.ndarray) -> np.ndarray:
    return values[list(CONTRACT_V1.model_input_indices)].astype(np.float32)


def at(ts_sec: int, age_ms: int) -> int:
    """The tick time (µs) at which second ``ts_sec`` is ``age_ms`` old."""
    return (ts_sec + 1) * 1_000_000 + age_ms * 1000


def tick(
    now_us: int,
    latest: LatestVector | None = None,
    history: dict | None = None,
    lake: dict | None = None,
    *,
    reachable: bool = True,
) -> TickInputs:
    return TickInputs(now_us, reachable, latest, history or {}, lake or {})


def fresh_tick(ts_sec: int, age_ms: int = 800, missing: Iterable[str] = ()) -> TickInputs:
    values = vector(ts_sec, missing)
    return tick(at(ts_sec, age_ms), LatestVector(ts_sec, values), {ts_sec: values})


def lost_tick(now_us: int, lake: dict | None = None) -> TickInputs:
    return tick(now_us, lake=lake, reachable=False)


@pytest.fixture
def controller() -> FallbackController:
    return FallbackController(FallbackSettings(FRESH, STALE, LOST, ema_alpha=0.2))


def assert_predicts(decision: FallbackDecision) -> None:
    assert decision.model_input is not None
    assert decision.model_input.dtype == np.float32
    assert decision.model_input.shape == (K,)
    assert np.isfinite(decision.model_input).all()


# Level 1


def test_fresh_complete_features_are_used_as_they_are(controller):
    decision = controller.decide(fresh_tick(T, age_ms=812))
    assert decision.level == FallbackLevel.FRESH == 1
    assert decision.reason == f"fresh: feat vector of {T} is 812 ms old"
    assert (decision.ts_sec, decision.feature_age_ms) == (T, 812)
    np.testing.assert_array_equal(decision.model_input, inputs_of(vector(T)))


def test_spread_is_not_a_model_input_so_a_null_spread_is_still_fresh(controller):
    assert "spread" not in INPUTS
    decision = controller.decide(fresh_tick(T, missing=["spread"]))
    assert decision.level == FallbackLevel.FRESH


def test_without_feat_the_newest_history_second_is_the_latest_vector(controller):
    decision = controller.decide(tick(at(T, 900), None, {T: vector(T), T - 1: vector(T - 1)}))
    assert decision.level == FallbackLevel.FRESH
    assert decision.reason == f"fresh: history vector of {T} is 900 ms old"


def test_feat_wins_over_the_history_for_the_same_second(controller):
    latest = LatestVector(T, vector(T))
    decision = controller.decide(tick(at(T, 500), latest, {T: vector(T, missing=INPUTS)}))
    assert decision.level == FallbackLevel.FRESH
    np.testing.assert_array_equal(decision.model_input, inputs_of(vector(T)))


# Level 1 / 2 / 4 boundaries


@pytest.mark.parametrize(
    ("age_ms", "level"),
    [
        (0, FallbackLevel.FRESH),
        (FRESH, FallbackLevel.FRESH),
        (FRESH + 1, FallbackLevel.REPAIRED),
        (STALE, FallbackLevel.REPAIRED),
        (STALE + 1, FallbackLevel.HOT_STATE_LOST),
        (LOST, FallbackLevel.HOT_STATE_LOST),
        (LOST + 1, FallbackLevel.SAFE_MODE),
    ],
)
def test_the_age_of_a_complete_vector_decides_its_level(controller, age_ms, level):
    decision = controller.decide(fresh_tick(T, age_ms=age_ms))
    assert decision.level == level
    assert decision.feature_age_ms == age_ms


def test_a_vector_ahead_of_the_tick_clock_counts_as_new():
    assert feature_age_ms(T, at(T, -300)) == 0
    assert feature_age_ms(T, at(T, 1234)) == 1234


# Level 2


def test_slightly_stale_features_are_repaired_from_older_history_seconds(controller):
    latest = vector(T, missing=["ret_5s", "vwap_5s_dev"])
    history = {T: latest, T - 1: vector(T - 1, missing=["ret_5s"]), T - 2: vector(T - 2)}
    decision = controller.decide(tick(at(T, 4_210), LatestVector(T, latest), history))

    assert decision.level == FallbackLevel.REPAIRED
    assert (decision.ts_sec, decision.feature_age_ms) == (T, 4_210)
    expected = inputs_of(vector(T))
    expected[INPUTS.index("vwap_5s_dev")] = np.float32(stamp(T - 1) + 3 / 100)
    expected[INPUTS.index("ret_5s")] = np.float32(stamp(T - 2) + 2 / 100)
    np.testing.assert_array_equal(decision.model_input, expected)
    assert decision.reason == (
        f"repaired: feat vector of {T} is 4210 ms old; vwap_5s_dev from {T - 1}; "
        f"ret_5s from {T - 2}; older than fresh 2500 ms"
    )


def test_a_fresh_vector_with_a_gap_the_history_fills_is_repaired(controller):
    latest = vector(T, missing=["tvi_5s"])
    decision = controller.decide(
        tick(at(T, 700), LatestVector(T, latest), {T: latest, T - 1: vector(T - 1)})
    )
    assert decision.level == FallbackLevel.REPAIRED
    assert decision.reason == f"repaired: feat vector of {T} is 700 ms old; tvi_5s from {T - 1}"


def test_history_older_than_stale_does_not_repair(controller):
    latest = vector(T, missing=["tvi_5s"])
    old = T - STALE // 1000 - 1
    decision = controller.decide(tick(at(T, 700), LatestVector(T, latest), {old: vector(old)}))
    assert decision.level == FallbackLevel.SAFE_MODE  # no EMA yet either
    assert decision.reason.endswith("never seen finite: tvi_5s")


# Level 3


def test_missing_inputs_take_their_ema_carried_forward(controller):
    for second in range(T - 3, T):
        assert controller.decide(fresh_tick(second)).level == FallbackLevel.FRESH
    ema = controller.ema
    decision = controller.decide(fresh_tick(T, missing=["ret_5s", "vol_ret_10s"]))

    assert decision.level == FallbackLevel.IMPUTED == 3
    assert decision.reason == (
        f"imputed: feat vector of {T} is 800 ms old; EMA for ret_5s, vol_ret_10s"
    )
    expected = inputs_of(vector(T))
    for name in ("ret_5s", "vol_ret_10s"):
        expected[INPUTS.index(name)] = np.float32(ema[INPUTS.index(name)])
    np.testing.assert_array_equal(decision.model_input, expected)


def test_the_ema_weighs_each_new_second_by_alpha_once(controller):
    controller.decide(fresh_tick(T - 2))
    controller.decide(fresh_tick(T - 1))
    controller.decide(fresh_tick(T - 1, age_ms=1_800))  # the same second again: not learnt
    indices = list(CONTRACT_V1.model_input_indices)
    first, second = vector(T - 2)[indices], vector(T - 1)[indices]
    np.testing.assert_allclose(controller.ema, 0.2 * second + 0.8 * first, rtol=1e-12)
    # A missing input keeps its EMA; the others move.
    controller.decide(fresh_tick(T, missing=["ret_1s"]))
    assert controller.ema[INPUTS.index("ret_1s")] == pytest.approx(
        0.2 * stamp(T - 1) + 0.8 * stamp(T - 2), rel=1e-12
    )


def test_an_invalid_book_is_named_in_the_reason(controller):
    controller.decide(fresh_tick(T - 1))
    values = vector(T, missing=["ret_1s"])
    decision = controller.decide(tick(at(T, 900), LatestVector(T, values, book_valid=False)))
    assert decision.level == FallbackLevel.IMPUTED
    assert "; book invalid; EMA for ret_1s" in decision.reason


def test_an_input_never_seen_means_safe_mode(controller):
    controller.decide(fresh_tick(T - 1, missing=["ret_5s"]))  # windows not full yet
    decision = controller.decide(fresh_tick(T, missing=["ret_5s", "ret_2s"]))
    assert decision.level == FallbackLevel.SAFE_MODE == SAFE_MODE
    assert decision.model_input is None
    assert (decision.ts_sec, decision.feature_age_ms) == (T, 800)
    assert decision.reason == (
        f"safe mode: imputed: feat vector of {T} is 800 ms old; never seen finite: ret_5s"
    )


def test_a_reason_lists_at_most_four_names(controller):
    decision = controller.decide(fresh_tick(T, missing=INPUTS[:7]))
    assert decision.reason.endswith("ret_1s, ret_2s, ret_5s, vwap_5s_dev (+3 more)")


# Level 4


def test_redis_lost_falls_back_to_the_last_good_vector_for_a_minute(controller):
    controller.decide(fresh_tick(T))
    decision = controller.decide(lost_tick(at(T, 3_000)))
    assert decision.level == FallbackLevel.HOT_STATE_LOST == 4
    assert decision.reason == (
        f"hot state lost (Redis unreachable): last good vector of {T} is 3000 ms old"
    )
    np.testing.assert_array_equal(decision.model_input, inputs_of(vector(T)))
    assert controller.decide(lost_tick(at(T, LOST))).level == FallbackLevel.HOT_STATE_LOST
    late = controller.decide(lost_tick(at(T, LOST + 1)))
    assert late.level == FallbackLevel.SAFE_MODE
    assert late.reason == (
        "safe mode: hot state lost (Redis unreachable), no vector within 60000 ms; "
        f"newest: last good vector of {T} is 60001 ms old"
    )
    assert (late.ts_sec, late.feature_age_ms) == (T, LOST + 1)


def test_a_newer_lake_vector_wins_and_its_gaps_are_filled(controller):
    controller.decide(fresh_tick(T))
    lake = {T + 5: vector(T + 5, missing=["n_trades_5s"]), T + 4: vector(T + 4)}
    decision = controller.decide(lost_tick(at(T + 5, 20_000), lake))
    assert decision.level == FallbackLevel.HOT_STATE_LOST
    assert decision.ts_sec == T + 5
    assert decision.reason == (
        f"hot state lost (Redis unreachable): lake vector of {T + 5} is 20000 ms old; "
        f"n_trades_5s from {T + 4}"
    )


def test_lake_vectors_alone_serve_after_a_restart(controller):
    lake = {T: vector(T, missing=["ret_1s"]), T - 1: vector(T - 1)}
    first = controller.decide(lost_tick(at(T, 5_000), lake))
    assert (first.level, first.ts_sec) == (FallbackLevel.HOT_STATE_LOST, T)
    assert first.reason.endswith(f"lake vector of {T} is 5000 ms old; ret_1s from {T - 1}")
    # The lake moved on without T; the vector used last is a candidate of its own.
    lake = {T + 1: vector(T + 1, missing=["ret_2s"])}
    decision = controller.decide(lost_tick(at(T + 1, 5_000), lake))
    assert decision.level == FallbackLevel.HOT_STATE_LOST
    assert decision.reason.endswith(f"; ret_2s from {T}")


def test_level_4_imputes_what_no_candidate_has_from_the_ema(controller):
    controller.decide(fresh_tick(T - 1))
    assert controller.decide(fresh_tick(T, missing=["ret_2s"])).level == FallbackLevel.IMPUTED
    decision = controller.decide(lost_tick(at(T, 4_000)))
    assert decision.level == FallbackLevel.HOT_STATE_LOST
    assert decision.reason == (
        f"hot state lost (Redis unreachable): last good vector of {T} is 4000 ms old; "
        "EMA for ret_2s"
    )
    assert decision.model_input[INPUTS.index("ret_2s")] == np.float32(stamp(T - 1) + 1 / 100)


def test_redis_up_but_both_keys_gone_is_hot_state_lost(controller):
    controller.decide(fresh_tick(T))
    decision = controller.decide(tick(at(T, 6_000)))
    assert decision.level == FallbackLevel.HOT_STATE_LOST
    assert decision.reason.startswith("hot state lost (no feat vector and no history): last good")


def test_a_stalled_features_role_is_hot_state_lost(controller):
    decision = controller.decide(fresh_tick(T, age_ms=30_000))
    assert decision.level == FallbackLevel.HOT_STATE_LOST
    assert decision.reason == (
        f"hot state lost (newest hot feat vector of {T} is 30000 ms old, stale limit 10000 ms): "
        f"feat vector of {T} is 30000 ms old"
    )


def test_nothing_at_all_is_safe_mode_without_a_second(controller):
    decision = controller.decide(lost_tick(at(T, 0)))
    assert decision == FallbackDecision(
        FallbackLevel.SAFE_MODE,
        None,
        None,
        None,
        "safe mode: hot state lost (Redis unreachable), no vector within 60000 ms",
    )


# Transitions


def test_a_service_through_every_level_and_back(controller):
    levels = [
        controller.decide(fresh_tick(T)).level,  # 1
        controller.decide(fresh_tick(T + 1, missing=["ret_1s"])).level,  # 3
        controller.decide(tick(at(T + 1, 5_000), None, {T + 1: vector(T + 1)})).level,  # 2
        controller.decide(lost_tick(at(T + 1, 15_000))).level,  # 4: last good is T+1
        controller.decide(lost_tick(at(T + 1, 61_000))).level,  # 5
        controller.decide(fresh_tick(T + 70)).level,  # 1: Redis is back
    ]
    assert levels == [1, 3, 2, 4, 5, 1]


def test_the_last_good_vector_is_not_replaced_by_a_safe_mode_tick(controller):
    controller.decide(fresh_tick(T))
    controller.decide(fresh_tick(T + 1, missing=["spread"]))
    assert controller.decide(fresh_tick(T + 2, missing=["burst_1s"])).level == 3
    controller.decide(fresh_tick(T + 3, missing=["ret_1s"]))
    decision = controller.decide(lost_tick(at(T + 3, 2_000)))
    assert decision.ts_sec == T + 3  # an imputed tick is a good tick


# Input checks


def test_a_vector_of_another_width_is_refused(controller):
    with pytest.raises(ValueError, match="contract v1 vectors have 20 values"):
        controller.decide(tick(at(T, 0), LatestVector(T, vector(T)[:-1])))


@pytest.mark.parametrize(
    "bad",
    [
        FallbackSettings(fresh_ms=20_000),
        FallbackSettings(lost_max_age_ms=5_000),
        FallbackSettings(ema_alpha=0.0),
        FallbackSettings(ema_alpha=1.5),
    ],
)
def test_inconsistent_settings_are_refused(bad):
    with pytest.raises(ValueError, match=r"fresh_ms <= stale_ms|ema_alpha"):
        FallbackController(bad)


# Properties

second_offsets = st.integers(min_value=-80, max_value=0)
missing_sets = st.sets(st.sampled_from(INPUTS), max_size=4)


@st.composite
def ticks(draw: st.DrawFn, now_second: int) -> TickInputs:
    now_us = (now_second + 1) * 1_000_000 + draw(st.integers(0, 999)) * 1000

    def some_vectors(max_size: int) -> dict[int, np.ndarray]:
        offsets = draw(st.sets(second_offsets, max_size=max_size))
        return {now_second + o: vector(now_second + o, draw(missing_sets)) for o in offsets}

    reachable = draw(st.booleans())
    latest = None
    history: dict[int, np.ndarray] = {}
    if reachable:
        history = some_vectors(4)
        if draw(st.booleans()):
            ts = now_second + draw(second_offsets)
            latest = LatestVector(ts, vector(ts, draw(missing_sets)), draw(st.booleans()))
    return TickInputs(now_us, reachable, latest, history, some_vectors(3))


@settings(max_examples=200, deadline=None)
@given(st.data(), st.integers(1, 8))
def test_every_decision_is_consistent_with_its_level(data, n_ticks):
    controller = FallbackController()
    for step in range(n_ticks):
        inputs = data.draw(ticks(T + 10 * step))
        decision = controller.decide(inputs)
        if decision.level == FallbackLevel.SAFE_MODE:
            assert decision.model_input is None
            assert decision.reason.startswith("safe mode: ")
            continue
        assert_predicts(decision)
        assert decision.feature_age_ms == feature_age_ms(decision.ts_sec, inputs.now_us)
        limit = {1: FRESH, 2: STALE, 3: STALE, 4: LOST}[decision.level]
        assert decision.feature_age_ms <= limit
        # Values are the second's own or older ones; only an EMA may hold newer seconds
        # (learnt on earlier ticks), and nothing is ever from after the tick.
        assert (decision.model_input < np.float32(stamp(inputs.now_us // 1_000_000))).all()
        if "EMA for" not in decision.reason:
            assert (decision.model_input < np.float32(stamp(decision.ts_sec) + 1)).all()
        if decision.level == FallbackLevel.FRESH:
            assert decision.reason.startswith("fresh: ")
            np.testing.assert_array_equal(decision.model_input, inputs_of(vector(decision.ts_sec)))


@settings(max_examples=100, deadline=None)
@given(st.integers(0, FRESH), missing_sets, st.integers(0, 3))
def test_fresh_complete_features_always_win(age_ms, missing_before, warm_up):
    """Whatever came before, a fresh complete vector is level 1 and used unchanged."""
    controller = FallbackController()
    for second in range(T - warm_up, T):
        controller.decide(fresh_tick(second, missing=missing_before))
    controller.decide(lost_tick(at(T - 1, 30_000)))
    decision = controller.decide(fresh_tick(T + 30, age_ms=age_ms))
    assert decision.level == FallbackLevel.FRESH
    np.testing.assert_array_equal(decision.model_input, inputs_of(vector(T + 30)))
