"""The model the service predicts with, hot-swapped when the pointer names a new version.

``refresh`` is blocking I/O (the store may be S3): the service runs it in a thread every
``model_poll_s``. The tick reads the served model from the event loop at the same time, so
the version and its model are one immutable pair swapped by a single assignment: a tick
sees the old pair or the new one, never the new version beside the old model.

A bundle is swapped in only after ``load_bundle`` verified it (sha256, signature, golden
vectors) and it is the version, symbol and contract the pointer and the service expect;
anything else keeps the last good model serving, is counted in
``btc_model_load_failures_total{reason=<error class>}`` and logged. A refused version is
not fetched again on every poll: only when the pointer changes or ``retry_refused_s``
passed (a bundle uploaded late, a store that was briefly unreachable).

A verified model can still fail on live inputs its golden rows never had: onnxruntime
raises, ``yhat`` has another shape, or it is not finite. ``predict_versioned`` then raises
``ModelFailed`` (the tick goes to safe mode), counted in
``btc_model_errors_total{reason=run_error|output_shape|non_finite}``. After
``failures_before_fallback`` of them in a row, the previous version serves again and the
failing one is quarantined (``btc_model_load_failures_total{reason="ModelQuarantined"}``):
polls skip it while the pointer still names it, so a restart-free service cannot loop on
it; a pointer naming any other version lifts the quarantine.

The previous version is in memory only if a swap happened in this process. After a restart
on a bad version there is none: the next ``refresh`` (a poll, off the event loop: the store
may be S3) loads the pointer's previous production version instead, newest first, skipping
quarantined ones and ones that fail to load, at most ``FALLBACK_CANDIDATES`` per poll and,
when none loads, again only after ``retry_refused_s``; once one loads it serves and the
failing one is quarantined as above. Until then (and for good, if the pointer has nothing
loadable before it) the failing one keeps serving, each failure a safe-mode tick: dropping
it would only stop it predicting on the inputs it handles.
"""

from __future__ import annotations

import logging
import math
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from realtime.features.contract import CONTRACT_V1, FeatureContract
from realtime.inference.bundle import MANIFEST_FILE, LoadedModel, OutputShapeInvalid, load_bundle
from realtime.inference.errors import ManifestInvalid
from realtime.inference.pointer import ModelPointer
from realtime.inference.store import BundleStore
from realtime.service.metrics import Metrics

log = logging.getLogger(__name__)

RETRY_REFUSED_S = 300.0
"""A refused version is tried again after this long even if the pointer did not change."""
FAILURES_BEFORE_FALLBACK = 3
"""Model errors in a row after which the previous version serves again."""
FALLBACK_CANDIDATES = 3
"""Versions of the pointer's ``previous`` tried per poll when no earlier one is in memory."""
QUARANTINED = "ModelQuarantined"
"""The ``reason`` of ``btc_model_load_failures_total`` when a served version is dropped."""
_DETAIL_CHARS = 200
"""onnxruntime's messages run long; the prediction's reason keeps their head."""


class NoModelServing(RuntimeError):
    """``predict`` was called before any bundle loaded: the tick must go to safe mode."""


class ModelFailed(RuntimeError):
    """The served model gave no usable number for one input: the tick goes to safe mode.

    ``reason`` is the ``btc_model_errors_total`` label: ``run_error`` (onnxruntime raised),
    ``output_shape`` (``yhat`` not ``[N, 1]`` for ``N`` inputs) or ``non_finite`` (NaN or infinite).
    """

    def __init__(self, version: str, reason: str, detail: str) -> None:
        super().__init__(f"model {version} failed ({reason}): {detail[:_DETAIL_CHARS]}")
        self.version = version
        self.reason = reason


class ServedModel(NamedTuple):
    """What serves, as one pair: the version the pointer named and its verified model."""

    version: str
    model: LoadedModel


class _Refusal(NamedTuple):
    pointer: ModelPointer
    """The pointer that named the refused version; a different one is tried at once."""
    at_s: float


class ServingModel:
    """The symbol's production model from ``store``, verified, with the last good one kept."""

    def __init__(
        self,
        store: BundleStore,
        symbol: str,
        cache_dir: Path,
        metrics: Metrics,
        *,
        contract: FeatureContract = CONTRACT_V1,
        retry_refused_s: float = RETRY_REFUSED_S,
        failures_before_fallback: int = FAILURES_BEFORE_FALLBACK,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``contract`` is the one the service's vectors follow: a model of another is refused.

        ``clock`` (seconds, monotonic) times the retry of refused versions; tests drive it.
        ``failures_before_fallback`` (>= 1) model errors in a row drop the served version.
        """
        if failures_before_fallback < 1:
            raise ValueError(f"failures_before_fallback must be >= 1: {failures_before_fallback}")
        self._store = store
        self._symbol = symbol.upper()
        self._cache_dir = cache_dir
        self._metrics = metrics
        self._contract = contract
        self._retry_refused_s = retry_refused_s
        self._clock = clock
        self._failures_before_fallback = failures_before_fallback
        # refresh() swaps from the poller's thread while a tick may fall back on the loop:
        # both change what serves under this lock (held for assignments only, never a load).
        self._lock = threading.Lock()
        self._served: ServedModel | None = None
        self._previous: ServedModel | None = None
        """What served before ``_served``: the version a failing one falls back to."""
        self._quarantined: str | None = None
        """A version dropped for failing; not loaded again while the pointer names it."""
        self._failures_in_a_row = 0
        """Model errors of ``_served`` since its last good prediction."""
        self._refusal: _Refusal | None = None
        self._fallback_due: str | None = None
        """A served version that failed enough with nothing in memory: polls replace it."""
        self._fallback_retry_at_s = -math.inf
        """When the pointer's previous versions may be tried again after none loaded."""
        self._last_warning = ""

    @property
    def served(self) -> ServedModel | None:
        """The version and model serving now, read in one step (``None`` before the first)."""
        return self._served

    @property
    def model(self) -> LoadedModel | None:
        served = self._served
        return served.model if served is not None else None

    @property
    def version(self) -> str:
        """The served version, ``""`` while no model is loaded (the prediction record's form)."""
        served = self._served
        return served.version if served is not None else ""

    @property
    def model_inputs(self) -> tuple[str, ...]:
        """Feature names the model reads, in order: the manifest's, which equal the contract's.

        Before the first model loads, the contract's: every model accepted here has exactly
        those.
        """
        served = self._served
        return served.model.manifest.input_names if served else self._contract.model_inputs

    def predict(self, features: np.ndarray) -> float:
        """The predicted 10-second log return for one raw model-input vector ``[K]``."""
        return self.predict_versioned(features)[0]

    @property
    def quarantined(self) -> str | None:
        """The version dropped for failing, while the pointer still names it."""
        return self._quarantined

    def predict_versioned(self, features: np.ndarray) -> tuple[float, str]:
        """``(yhat, version)`` from one model: a swap between two reads cannot mislabel it.

        ``features`` is float32 (or float64) ``[K]`` in ``model_inputs`` order, unscaled;
        ``yhat`` is finite. ``NoModelServing`` before any model loaded; ``ModelFailed`` (counted,
        logged, and after enough in a row the previous version serves) if the model fails.
        """
        served = self._served
        if served is None:
            raise NoModelServing(f"no {self._symbol} model has loaded yet")
        features = np.asarray(features)
        if features.shape != (served.model.manifest.width,):
            # The caller's error, not the model's: it does not count against the version.
            raise ValueError(
                f"features must have shape ({served.model.manifest.width},), got {features.shape}"
            )
        try:
            yhat = float(served.model.predict(features)[0])
        except OutputShapeInvalid as error:
            raise self._model_failed(served, "output_shape", str(error)) from error
        except Exception as error:  # onnxruntime raises its own unrelated classes per failure
            raise self._model_failed(
                served, "run_error", f"{type(error).__name__}: {error}"
            ) from error
        if not math.isfinite(yhat):
            raise self._model_failed(served, "non_finite", f"yhat is {yhat}")
        if self._failures_in_a_row:
            with self._lock:
                if self._served is served:
                    self._failures_in_a_row = 0
        return yhat, served.version

    def _model_failed(self, served: ServedModel, reason: str, detail: str) -> ModelFailed:
        """Count one model error of ``served``; fall back once it failed enough in a row."""
        failure = ModelFailed(served.version, reason, detail)
        self._metrics.model_errors.labels(reason=reason).inc()
        with self._lock:
            if self._served is not served:  # swapped meanwhile: the new one starts afresh
                return failure
            self._failures_in_a_row += 1
            in_a_row = self._failures_in_a_row
        # Counted every time; said when a run of failures starts and when it is acted on.
        if in_a_row == 1:
            log.warning("%s %s; serving safe mode for this tick", self._symbol, failure)
        else:
            log.debug("%s %s (%d in a row)", self._symbol, failure, in_a_row)
        if in_a_row == self._failures_before_fallback:
            self._fall_back(served, failure)
        return failure

    def _fall_back(self, failing: ServedModel, failure: ModelFailed) -> None:
        """Serve the previous version again and quarantine ``failing``, if there is one."""
        with self._lock:
            if self._served is not failing:  # a new version swapped in meanwhile
                return
            previous = self._previous
            if previous is not None:
                self._served, self._previous = previous, None
                self._quarantined = failing.version
                self._failures_in_a_row = 0
            elif self._fallback_due != failing.version:
                self._fallback_due = failing.version
                self._fallback_retry_at_s = -math.inf
        if previous is None:
            log.error(
                "%s model %s failed %d times in a row and there is no previous version in "
                "this process: it keeps serving, each failure a safe-mode tick, until a poll "
                "loads the pointer's previous production version (last: %s)",
                self._symbol,
                failing.version,
                self._failures_before_fallback,
                failure,
            )
            return
        self._metrics.model_load_failures.labels(reason=QUARANTINED).inc()
        self._metrics.model_info.labels(version=failing.version).set(0)
        self._metrics.model_info.labels(version=previous.version).set(1)
        log.error(
            "%s model %s failed %d times in a row (last: %s): quarantined, %s serving again "
            "until the pointer names another version",
            self._symbol,
            failing.version,
            self._failures_before_fallback,
            failure,
            previous.version,
        )

    def refresh(self) -> bool:
        """Read the pointer; load and swap in a new production version. True if swapped.

        Never raises for a bad pointer, store or bundle: those are counted and logged, and
        the served model stays.
        """
        try:
            pointer = self._store.read_pointer(self._symbol)
        except Exception as error:  # PointerInvalid, OSError, and whatever S3 raises
            self._failed(error, f"{self._symbol} pointer unreadable")
            return False
        self._last_warning = ""  # the pointer is readable again: its next failure is news
        if pointer is None or pointer.production is None:
            return False
        version = pointer.production
        # One look at both: a tick may quarantine the served version between two reads.
        with self._lock:
            quarantined, serving = self._quarantined, self.version
        if quarantined is not None:
            if version == quarantined:
                return False
            # The pointer moved on; naming that version again later is a new promotion.
            self._lift_quarantine()
        if version == serving:
            return self._fallback_due == serving and self._fall_back_from_store(pointer)
        if self._refusal_holds(pointer):
            return False
        try:
            model = self._load(version)
        except Exception as error:  # every BundleRejected, OSError; an unforeseen one alike
            self._refusal = _Refusal(pointer, self._clock())
            self._remove_cached(version)
            self._failed(error, f"{self._symbol} {version} refused")
            return False
        self._swap(ServedModel(version, model))
        return True

    def _fall_back_from_store(self, pointer: ModelPointer) -> bool:
        """Serve the newest of ``pointer.previous`` that loads, quarantining the failing one.

        At most ``FALLBACK_CANDIDATES`` loads per call; when none loads, no more before
        ``retry_refused_s``. True if one swapped in.
        """
        if self._clock() < self._fallback_retry_at_s:
            return False
        failing = self._served
        assert failing is not None
        skip = {failing.version, self._quarantined}
        newest_first = dict.fromkeys(v for v in reversed(pointer.previous) if v not in skip)
        candidates = list(newest_first)[:FALLBACK_CANDIDATES]
        for version in candidates:
            try:
                model = self._load(version)
            except Exception as error:  # every BundleRejected, OSError; an unforeseen one alike
                self._remove_cached(version)
                self._failed(error, f"{self._symbol} fallback {version} refused")
                continue
            with self._lock:
                if self._served is not failing:  # cannot happen from a tick; keep it one swap
                    return False
                self._served, self._previous = ServedModel(version, model), None
                self._quarantined, self._fallback_due = failing.version, None
                self._failures_in_a_row = 0
            self._metrics.model_load_failures.labels(reason=QUARANTINED).inc()
            self._metrics.model_info.labels(version=failing.version).set(0)
            self._metrics.model_info.labels(version=version).set(1)
            self._remove_cached(failing.version)
            log.error(
                "%s model %s quarantined: %s (the pointer's previous production) serving "
                "until the pointer names another version",
                self._symbol,
                failing.version,
                version,
            )
            return True
        self._fallback_retry_at_s = self._clock() + self._retry_refused_s
        log.error(
            "%s model %s keeps serving, each failure a safe-mode tick: none of the pointer's "
            "previous versions %s loaded",
            self._symbol,
            failing.version,
            candidates,
        )
        return False

    def _refusal_holds(self, pointer: ModelPointer) -> bool:
        refusal = self._refusal
        if refusal is None or refusal.pointer != pointer:
            return False
        return self._clock() - refusal.at_s < self._retry_refused_s

    def _load(self, version: str) -> LoadedModel:
        directory = self._store.fetch_bundle(self._symbol, version, self._cache_dir)
        model = load_bundle(directory)
        manifest, source = model.manifest, directory / MANIFEST_FILE
        # A valid bundle can still be the wrong one: copied under another name or symbol, or
        # made for a contract whose vectors this service does not build.
        if manifest.version != version:
            raise ManifestInvalid(
                "version", f"is {manifest.version!r}, the pointer names {version!r}", source=source
            )
        if manifest.symbol != self._symbol:
            raise ManifestInvalid(
                "symbol", f"is {manifest.symbol!r}, serving {self._symbol!r}", source=source
            )
        if manifest.contract_version != self._contract.version:
            raise ManifestInvalid(
                "feature_contract.version",
                f"is {manifest.contract_version}, the service builds contract "
                f"v{self._contract.version} vectors",
                source=source,
            )
        return model

    def _lift_quarantine(self) -> None:
        with self._lock:
            lifted, self._quarantined = self._quarantined, None
        log.info(
            "%s model %s no longer quarantined: the pointer names another", self._symbol, lifted
        )

    def _swap(self, served: ServedModel) -> None:
        with self._lock:
            previous = self._served
            self._served, self._previous = served, previous
            self._failures_in_a_row = 0
            self._fallback_due = None
        self._refusal = None
        self._metrics.model_info.labels(version=served.version).set(1)
        if previous is not None:
            self._metrics.model_info.labels(version=previous.version).set(0)
            # The session was built from the bytes: the files only served the verification.
            self._remove_cached(previous.version)
        log.info(
            "%s model %s serving (was %s)",
            self._symbol,
            served.version,
            previous.version if previous else "none",
        )

    def _failed(self, error: Exception, what: str) -> None:
        reason = type(error).__name__
        self._metrics.model_load_failures.labels(reason=reason).inc()
        message = f"{what}: {reason}: {error}; still serving {self.version or 'no model'}"
        # A pointer that stays broken fails every poll: say so once, count every time.
        if message != self._last_warning:
            log.warning("%s", message)
            self._last_warning = message
        else:
            log.debug("%s", message)

    def _remove_cached(self, version: str) -> None:
        directory = self._cache_dir / version
        # The pointer validates version names; this keeps a delete inside the cache anyway.
        if directory.parent == self._cache_dir and version not in ("", ".", ".."):
            shutil.rmtree(directory, ignore_errors=True)
