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
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from realtime.features.contract import CONTRACT_V1, FeatureContract
from realtime.inference.bundle import MANIFEST_FILE, LoadedModel, load_bundle
from realtime.inference.errors import ManifestInvalid
from realtime.inference.pointer import ModelPointer
from realtime.inference.store import BundleStore
from realtime.service.metrics import Metrics

log = logging.getLogger(__name__)

RETRY_REFUSED_S = 300.0
"""A refused version is tried again after this long even if the pointer did not change."""


class NoModelServing(RuntimeError):
    """``predict`` was called before any bundle loaded: the tick must go to safe mode."""


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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``contract`` is the one the service's vectors follow: a model of another is refused.

        ``clock`` (seconds, monotonic) times the retry of refused versions; tests drive it.
        """
        self._store = store
        self._symbol = symbol.upper()
        self._cache_dir = cache_dir
        self._metrics = metrics
        self._contract = contract
        self._retry_refused_s = retry_refused_s
        self._clock = clock
        self._served: ServedModel | None = None
        self._refusal: _Refusal | None = None
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

    def predict_versioned(self, features: np.ndarray) -> tuple[float, str]:
        """``(yhat, version)`` from one model: a swap between two reads cannot mislabel it.

        ``features`` is float32 (or float64) ``[K]`` in ``model_inputs`` order, unscaled;
        ``NoModelServing`` before any model loaded.
        """
        served = self._served
        if served is None:
            raise NoModelServing(f"no {self._symbol} model has loaded yet")
        features = np.asarray(features)
        if features.shape != (served.model.manifest.width,):
            raise ValueError(
                f"features must have shape ({served.model.manifest.width},), got {features.shape}"
            )
        return float(served.model.predict(features)[0]), served.version

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
        if version == self.version:
            return False
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

    def _swap(self, served: ServedModel) -> None:
        previous = self._served
        self._served = served
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
