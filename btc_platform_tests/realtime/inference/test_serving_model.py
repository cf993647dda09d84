"""The hot-swapped model against a real store directory, real bundles and a real onnxruntime:
good versions swap in, bad ones are refused and the last good one keeps serving."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from btc_platform_tests.realtime.inference.examples import K
from realtime.inference.bundle import MANIFEST_FILE, MODEL_FILE
from realtime.inference.pointer import ModelPointer
from realtime.inference.serving_model import (
    QUARANTINED,
    RETRY_REFUSED_S,
    ModelFailed,
    NoModelServing,
)

pytest.importorskip("onnx", reason="building the test graph needs onnx (the batch extra)")
from btc_platform_tests.realtime.inference.model_world import World
from btc_platform_tests.realtime.inference.tiny_model import TRAP_BEYOND, tiny_model

SYMBOL = "BTCUSDT"


@pytest.fixture
def world(tmp_path) -> World:
    return World(tmp_path / "models", tmp_path / "cache")


@pytest.fixture
def features() -> np.ndarray:
    return tiny_model(K).sample(1, seed=9)[0]


def serving_good_versions(world: World) -> tuple[str, str]:
    v1, v2 = world.add_version(1, 0.001), world.add_version(2, -0.002)
    world.promote(v1)
    assert world.serving.refresh()
    world.promote(v2)
    assert world.serving.refresh()
    return v1, v2


def test_nothing_serves_before_a_pointer_names_a_version(world, features):
    assert not world.serving.refresh()  # no pointer at all
    world.write_pointer(ModelPointer(SYMBOL, canary="v0").to_json())
    assert not world.serving.refresh()  # nothing in production
    assert world.serving.model is None
    assert world.serving.version == ""
    assert world.serving.served is None
    with pytest.raises(NoModelServing):
        world.serving.predict(features)
    assert world.store.fetches == []


def test_a_new_production_version_swaps_in_and_predicts(world, features, tmp_path):
    v1 = world.add_version(1, 0.001)
    world.promote(v1)
    assert world.serving.refresh()
    assert world.serving.version == v1
    assert world.serving.predict(features) == pytest.approx(world.expected(v1, features), abs=1e-6)
    assert world.info(v1) == 1.0
    assert not world.serving.refresh()  # same version: nothing fetched again
    assert world.store.fetches == [v1]

    v2 = world.add_version(2, -0.002)
    world.promote(v2)
    assert world.serving.refresh()
    yhat, version = world.serving.predict_versioned(features.astype(np.float32))
    assert version == v2 == world.serving.version
    assert yhat == pytest.approx(world.expected(v2, features), abs=1e-6)
    assert abs(world.expected(v2, features) - world.expected(v1, features)) > 1e-3
    assert (world.info(v1), world.info(v2)) == (0.0, 1.0)
    assert world.serving.model_inputs == world.serving.model.manifest.input_names
    assert len(world.serving.model_inputs) == K
    # The session runs from memory: the previous version's files are gone from the cache.
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [v2]


def test_a_model_with_one_changed_byte_is_refused_and_the_old_one_keeps_serving(
    world, features, caplog
):
    _, v2 = serving_good_versions(world)
    v3 = world.add_version(3, 0.003)
    model_path = world.root / SYMBOL / v3 / MODEL_FILE
    onnx_bytes = bytearray(model_path.read_bytes())
    onnx_bytes[-1] ^= 0x01
    model_path.write_bytes(bytes(onnx_bytes))
    world.promote(v3)

    with caplog.at_level(logging.WARNING, logger="realtime.inference.serving_model"):
        assert not world.serving.refresh()
    assert world.serving.version == v2
    assert world.serving.predict(features) == pytest.approx(world.expected(v2, features), abs=1e-6)
    assert world.failures("ChecksumMismatch") == 1.0
    assert (world.info(v2), world.info(v3)) == (1.0, None)
    assert f"{v3} refused: ChecksumMismatch" in caplog.text
    assert f"still serving {v2}" in caplog.text

    # The same pointer is not fetched again on every poll...
    fetched = len(world.store.fetches)
    for _ in range(5):
        world.clock.now_s += 5.0
        assert not world.serving.refresh()
    assert len(world.store.fetches) == fetched
    assert world.failures("ChecksumMismatch") == 1.0
    # ...but after the retry delay it is, and refused again.
    world.clock.now_s += RETRY_REFUSED_S
    assert not world.serving.refresh()
    assert world.store.fetches[fetched:] == [v3]
    assert world.failures("ChecksumMismatch") == 2.0
    # A changed pointer is tried at once: here it names a good version again.
    world.promote(world.add_version(4, 0.004))
    assert world.serving.refresh()


def test_a_pointer_that_is_not_json_is_refused_every_poll_and_warned_once(world, features, caplog):
    _, v2 = serving_good_versions(world)
    world.write_pointer('{"symbol": "BTCUSDT", "production": ')
    with caplog.at_level(logging.WARNING, logger="realtime.inference.serving_model"):
        assert not world.serving.refresh()
        assert not world.serving.refresh()
    assert world.serving.version == v2
    assert world.serving.predict(features) == pytest.approx(world.expected(v2, features), abs=1e-6)
    assert world.failures("PointerInvalid") == 2.0
    warnings = [r for r in caplog.records if "pointer unreadable: PointerInvalid" in r.message]
    assert len(warnings) == 1


def test_a_pointer_without_a_symbol_is_refused(world):
    _, v2 = serving_good_versions(world)
    world.write_pointer(json.dumps({"production": v2}))
    assert not world.serving.refresh()
    assert world.failures("PointerInvalid") == 1.0


def test_a_golden_mismatch_is_refused(world, features):
    _, v2 = serving_good_versions(world)
    v3 = world.add_version(3, 0.003)
    manifest_path = world.root / SYMBOL / v3 / MANIFEST_FILE
    document = json.loads(manifest_path.read_text())
    document["golden"]["outputs"][1] += 1e-3  # the manifest is not hashed; the model is
    manifest_path.write_text(json.dumps(document))
    world.promote(v3)

    assert not world.serving.refresh()
    assert world.serving.version == v2
    assert world.failures("GoldenMismatch") == 1.0
    assert world.serving.predict(features) == pytest.approx(world.expected(v2, features), abs=1e-6)


def test_a_version_missing_from_the_store_is_refused(world):
    _, v2 = serving_good_versions(world)
    world.promote("20260110T000000Z-00000000")
    assert not world.serving.refresh()
    assert world.serving.version == v2
    assert world.failures("BundleMissing") == 1.0


def test_a_valid_bundle_under_another_version_name_is_refused(world):
    v1, v2 = serving_good_versions(world)
    copy = world.root / SYMBOL / "20260110T000000Z-ffffffff"
    copy.mkdir()
    for name in (MODEL_FILE, MANIFEST_FILE):
        (copy / name).write_bytes((world.root / SYMBOL / v1 / name).read_bytes())
    world.promote(copy.name)
    assert not world.serving.refresh()
    assert world.serving.version == v2
    assert world.failures("ManifestInvalid") == 1.0


def test_the_first_good_version_serves_after_refusals(world, features):
    """At start-up with a bad production version there is no model until a good one comes."""
    v1 = world.add_version(1, 0.001)
    (world.root / SYMBOL / v1 / MODEL_FILE).write_bytes(b"not onnx")
    world.promote(v1)
    assert not world.serving.refresh()
    assert world.serving.model is None
    assert world.failures("ChecksumMismatch") == 1.0
    v2 = world.add_version(2, -0.002)
    world.promote(v2)
    assert world.serving.refresh()
    assert world.serving.predict(features) == pytest.approx(world.expected(v2, features), abs=1e-6)


def test_predict_checks_the_vector_width(world, features):
    serving_good_versions(world)
    with pytest.raises(ValueError, match=rf"shape \({K},\)"):
        world.serving.predict(features[:-1])
    with pytest.raises(ValueError, match=rf"shape \({K},\)"):
        world.serving.predict(features[None, :])


def trapped(features: np.ndarray) -> np.ndarray:
    """``features`` with a first input every trapped model fails on."""
    live = features.copy()
    live[0] = 2.5 * TRAP_BEYOND
    return live


def errors(world: World, reason: str) -> float:
    value = world.metrics.registry.get_sample_value("btc_model_errors_total", {"reason": reason})
    return value or 0.0


def test_only_model_errors_in_a_row_drop_a_version(world, features, caplog):
    good = world.add_version(1, 0.001)
    failing = world.add_version(2, -0.002, trap="raises")
    for version in (good, failing):
        world.promote(version)
        assert world.serving.refresh()

    with caplog.at_level(logging.WARNING, logger="realtime.inference.serving_model"):
        for _ in range(2):
            with pytest.raises(ModelFailed, match=rf"model {failing} failed \(run_error\)"):
                world.serving.predict(trapped(features))
        # A good prediction between failures: the run starts again.
        assert world.serving.predict(features) == pytest.approx(
            world.expected(failing, features), abs=1e-6
        )
        for _ in range(2):
            with pytest.raises(ModelFailed):
                world.serving.predict(trapped(features))
        assert world.serving.version == failing
        assert world.failures(QUARANTINED) == 0.0
        with pytest.raises(ModelFailed) as third:
            world.serving.predict(trapped(features))

    assert third.value.version == failing
    assert third.value.reason == "run_error"
    assert "InvalidArgument" in str(third.value)
    assert errors(world, "run_error") == 5.0
    assert world.serving.version == good
    assert world.serving.quarantined == failing
    assert world.failures(QUARANTINED) == 1.0
    assert (world.info(good), world.info(failing)) == (1.0, 0.0)
    yhat, version = world.serving.predict_versioned(trapped(features))
    assert version == good
    assert yhat == pytest.approx(world.expected(good, trapped(features)), abs=1e-6)
    # Warned when each run started and when it was acted on, not at every failure.
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 3
    assert f"{failing} failed 3 times in a row" in warnings[-1].message
    assert f"quarantined, {good} serving again" in warnings[-1].message


def test_a_quarantine_lasts_until_the_pointer_names_another_version(world, features):
    good = world.add_version(1, 0.001)
    failing = world.add_version(2, -0.002, trap="nan")
    for version in (good, failing):
        world.promote(version)
        assert world.serving.refresh()
    for _ in range(3):
        with pytest.raises(ModelFailed, match="non_finite"):
            world.serving.predict(trapped(features))
    assert world.serving.version == good
    fetched = len(world.store.fetches)

    for _ in range(3):  # the pointer still names it: never fetched, not even after a while
        world.clock.now_s += RETRY_REFUSED_S
        assert not world.serving.refresh()
    assert len(world.store.fetches) == fetched
    # Rolled back to the good one: the quarantine is lifted (nothing to load)...
    world.promote(good)
    assert not world.serving.refresh()
    assert world.serving.quarantined is None
    # ...and promoting the failing one again is a new decision, carried out.
    world.promote(failing)
    assert world.serving.refresh()
    assert world.serving.version == failing
    assert world.store.fetches[fetched:] == [failing]


def restarted_on(world: World, production: str, previous: tuple[str, ...]) -> None:
    """A fresh process whose first version is ``production``: nothing earlier in memory."""
    world.pointer = ModelPointer(SYMBOL, production=production, previous=previous)
    world.write_pointer(world.pointer.to_json())
    assert world.serving.refresh()
    assert world.serving.version == production


def test_after_a_restart_a_failing_version_falls_back_to_the_pointer_s_previous(world, features):
    good = world.add_version(1, 0.001)
    failing = world.add_version(2, -0.002, trap="raises")
    restarted_on(world, failing, previous=(good,))

    for _ in range(3):
        with pytest.raises(ModelFailed, match="run_error"):
            world.serving.predict(trapped(features))
    assert world.serving.version == failing
    # The store is read by the poll (blocking I/O stays off the tick): the next one loads it.
    assert world.serving.refresh()
    assert world.serving.version == good
    assert world.serving.quarantined == failing
    assert world.failures(QUARANTINED) == 1.0
    assert (world.info(good), world.info(failing)) == (1.0, 0.0)
    yhat, version = world.serving.predict_versioned(trapped(features))
    assert version == good
    assert yhat == pytest.approx(world.expected(good, trapped(features)), abs=1e-6)
    assert not world.serving.refresh()  # the pointer still names the quarantined one
    assert world.serving.version == good


def test_the_store_fallback_skips_versions_that_fail_to_load_and_tries_a_few(world, features):
    good = world.add_version(1, 0.001)
    failing = world.add_version(3, -0.002, trap="nan")
    missing = [f"20260101T00000{i}Z-0000000{i}" for i in range(4)]
    # Newest last: the missing ones are tried first, at most three versions per attempt.
    restarted_on(world, failing, previous=(good, *missing))
    fetched = len(world.store.fetches)

    for _ in range(3):
        with pytest.raises(ModelFailed, match="non_finite"):
            world.serving.predict(trapped(features))
    assert not world.serving.refresh()
    assert world.store.fetches[fetched:] == missing[:0:-1]
    assert world.serving.version == failing
    assert world.serving.quarantined is None
    assert world.failures(QUARANTINED) == 0.0
    assert not world.serving.refresh()  # not again at every poll...
    assert len(world.store.fetches) == fetched + 3
    world.clock.now_s += RETRY_REFUSED_S  # ...only after a while
    restarted = (good, missing[0])
    world.pointer = ModelPointer(SYMBOL, production=failing, previous=restarted)
    world.write_pointer(world.pointer.to_json())
    assert world.serving.refresh()
    assert world.serving.version == good
    assert world.serving.quarantined == failing
