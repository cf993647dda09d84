"""Load a model bundle in a child process where torch, Dagster and onnx cannot be imported,
as on the realtime service's image, and report what it predicted for the golden inputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).parents[2]

CHILD = r"""
import importlib.abc, json, sys

BATCH_ONLY = {"torch", "dagster", "onnx"}

class RefuseBatchPackages(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BATCH_ONLY:
            raise ModuleNotFoundError(f"No module named {name!r} (refused)", name=name)
        return None

sys.meta_path.insert(0, RefuseBatchPackages())
for name in sorted(BATCH_ONLY):
    try:
        __import__(name)
    except ModuleNotFoundError:
        continue
    raise SystemExit(f"{name} is importable: the test would prove nothing")

import numpy as np
from realtime.inference.bundle import load_bundle

model = load_bundle(sys.argv[1])
print(json.dumps({
    "yhat": model.predict(np.asarray(model.manifest.golden_inputs)).tolist(),
    "golden": list(model.manifest.golden_outputs),
    "batch_modules": sorted({m.partition(".")[0] for m in sys.modules} & BATCH_ONLY),
}))
"""


def load_without_batch_packages(bundle_dir: Path) -> dict:
    """``{"yhat", "golden", "batch_modules"}`` from the child; fails on any child error."""
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(bundle_dir)],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
