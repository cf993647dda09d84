"""Every benchmark in bench/ starts from a fresh clone and prints its JSON (``--smoke``).

``make bench`` runs each script as ``python bench/NAME.py``, so bench/ comes first on its
``sys.path``: a script named like a package (``bench/realtime.py`` once was) hides that
package from every script there. Each script is run here as ``make bench`` runs it, with
``--smoke`` (tiny sizes, seconds; see bench/_smoke.py), and its JSON is read back.
New scripts are picked up by name; private modules (``_machine.py``) are not scripts.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
SCRIPTS = sorted(path for path in BENCH.glob("*.py") if not path.name.startswith("_"))
PROJECT_PACKAGES = {"realtime", "btc_platform", "btc_platform_tests", "dbt_like_sql", "bench"}
SMOKE_TIMEOUT_S = 900
"""Per script: seconds on an idle machine, minutes on a 2-core one busy with other work."""

MACHINE_KEYS = {
    "cpu_model",
    "cores",
    "python",
    "reference_python_int_loop_ns_per_iteration",
    "reference_numpy_sqrt_ns_per_element",
}
EXPECTED_KEYS = {
    "sbe_decode": {"median_messages_per_s", "per_template", "meets_target"},
    "features_day": {"batch_median", "live_trades_per_s", "parity_bit_for_bit"},
    "features_v2_day": {"batch", "live_events_per_s", "mismatched_values"},
    "sim_stream": {"frames_per_s_median", "meets_target"},
    "quality_day": {"import_gx_and_suites_s", "tables"},
    "lakehouse_day": {"day", "rest_budget"},
    "service_pipeline": {"ingest_bus_features", "tick_latency"},
    "chaos": {"target", "summary", "results", "not_run"},
}
"""The figures docs/benchmarks.md quotes, by script; a new script adds its own here."""


def test_no_bench_module_hides_an_importable_module():
    taken = (
        set(sys.stdlib_module_names)
        | set(importlib.metadata.packages_distributions())
        | PROJECT_PACKAGES
    )
    modules = sorted(path.stem for path in BENCH.glob("*.py"))
    assert "sbe_decode" in modules  # the glob looks where the scripts are
    hiding = [name for name in modules if name in taken or importlib.util.find_spec(name)]
    assert not hiding, f"rename these bench modules, they hide importable ones: {hiding}"


def test_every_script_has_its_expected_keys_listed():
    assert sorted(EXPECTED_KEYS.keys() & {path.stem for path in SCRIPTS}) == sorted(
        path.stem for path in SCRIPTS
    ), "add the new script's figures to EXPECTED_KEYS"


@pytest.mark.slow
@pytest.mark.timeout(SMOKE_TIMEOUT_S + 60)
@pytest.mark.parametrize("script", SCRIPTS, ids=[path.stem for path in SCRIPTS])
def test_the_benchmark_starts_and_prints_its_json(script: Path):
    finished = subprocess.run(
        [sys.executable, str(script.relative_to(ROOT)), "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=SMOKE_TIMEOUT_S,
    )
    assert finished.returncode == 0, finished.stderr[-4000:]
    result = json.loads(finished.stdout)
    assert result["benchmark"] == script.stem
    assert result["smoke"] is True
    assert result["machine"].keys() >= MACHINE_KEYS
    assert result["machine"]["reference_python_int_loop_ns_per_iteration"] > 0
    missing = EXPECTED_KEYS[script.stem] - result.keys()
    assert not missing, missing
