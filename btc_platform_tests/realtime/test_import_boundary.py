"""The realtime runtime stays lean: it imports neither Dagster nor torch nor the lake stack."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

PROJECT = Path(__file__).parents[2]
BATCH_ONLY = ("dagster", "torch", "pyiceberg", "duckdb", "polars", "great_expectations", "onnx")


def test_importing_every_realtime_module_loads_no_batch_dependency():
    script = f"""
import importlib, pkgutil, sys
import realtime
for module in pkgutil.walk_packages(realtime.__path__, "realtime."):
    importlib.import_module(module.name)
loaded = sorted({{name.split(".")[0] for name in sys.modules}} & set({BATCH_ONLY!r}))
print(",".join(loaded))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "", f"realtime imported batch-only packages: {result.stdout}"


def test_base_install_requires_no_batch_dependency():
    project = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]
    base = {requirement.split("[")[0].split("=")[0].split(">")[0].split("<")[0].strip().lower()
            for requirement in project["dependencies"]}  # fmt: skip
    assert not base & {"dagster", "torch", "pyiceberg", "duckdb", "great-expectations", "onnx"}
    batch = " ".join(project["optional-dependencies"]["batch"])
    assert "dagster==1.13.27" in batch
    assert "torch==2.13.0" in batch
