"""A model store on disk with verified bundles of retrained tiny models, and a pointer the
tests promote through: what the batch side leaves for the serving model to find."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np

from btc_platform_tests.realtime.inference.examples import TRAINED_AT, K, example_manifest
from btc_platform_tests.realtime.inference.tiny_model import TinyModel, Trap, tiny_model
from realtime.inference.bundle import sha256_hex, write_bundle
from realtime.inference.manifest import bundle_version
from realtime.inference.pointer import ModelPointer
from realtime.inference.serving_model import ServingModel
from realtime.inference.store import POINTER_FILE, BundleStore
from realtime.service.metrics import Metrics

SYMBOL = "BTCUSDT"


class VirtualClock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


class CountingStore(BundleStore):
    """The real store, counting downloads (a refused version must not be fetched every poll)."""

    fetches: list[str]

    def fetch_bundle(self, symbol: str, version: str, local_dir: Path) -> Path:
        self.fetches.append(version)
        return super().fetch_bundle(symbol, version, local_dir)


class World:
    def __init__(self, root: Path, cache: Path) -> None:
        self.root = root
        self.store = CountingStore.open(str(root))
        self.store.fetches = []
        self.metrics = Metrics()
        self.clock = VirtualClock()
        self.serving = ServingModel(self.store, SYMBOL, cache, self.metrics, clock=self.clock)
        self.models: dict[str, TinyModel] = {}
        self.pointer = ModelPointer(SYMBOL)

    def add_version(self, day: int, bias: float, trap: Trap | None = None) -> str:
        """A verified bundle of a retrained model, written where the batch side puts it.

        With ``trap`` the bundle is as valid, but its model fails on live inputs far from
        its golden rows (``tiny_model.TRAP_BEYOND``).
        """
        model = tiny_model(K).with_output_bias(bias)
        onnx_bytes = model.onnx_bytes(trap=trap)
        golden_inputs = model.sample(4, seed=5)
        version = bundle_version(TRAINED_AT + timedelta(days=day), sha256_hex(onnx_bytes))
        manifest = example_manifest(
            version=version,
            scaler_mean=model.mean,
            scaler_scale=model.scale,
            golden_inputs=golden_inputs,
            golden_outputs=model.reference(golden_inputs),
            onnx_sha256="",
        )
        write_bundle(self.root / SYMBOL / version, onnx_bytes, manifest)
        self.models[version] = model
        return version

    def promote(self, version: str) -> None:
        """What the batch side's promotion leaves in the pointer file, history aside."""
        previous = (self.pointer.production,) if self.pointer.production else ()
        self.pointer = ModelPointer(
            SYMBOL, production=version, previous=self.pointer.previous + previous
        )
        self.write_pointer(self.pointer.to_json())

    def write_pointer(self, text: str) -> None:
        (self.root / SYMBOL).mkdir(parents=True, exist_ok=True)
        (self.root / SYMBOL / POINTER_FILE).write_text(text)

    def failures(self, reason: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "btc_model_load_failures_total", {"reason": reason}
        )
        return value or 0.0

    def info(self, version: str) -> float | None:
        return self.metrics.registry.get_sample_value("btc_model_info", {"version": version})

    def expected(self, version: str, features: np.ndarray) -> float:
        return float(self.models[version].reference(features[None, :])[0])
