"""The machine a benchmark ran on, with its speed on two fixed reference loops; for the JSON.

Every bench script puts ``machine()`` in its result. Figures from two machines compare
through the reference loops measured in the same run (and so under the same load): a
machine twice as slow on the pure-Python loop is expected to be about twice as slow on the
pure-Python parts of a bench. The loops never change, so their figures stay comparable.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

PYTHON_LOOP_ITERATIONS = 200_000
NUMPY_ELEMENTS = 1_000_000
NUMPY_PASSES = 5
REPEATS = 5
"""Each reference loop's figure is the median of this many timed repeats."""


def machine() -> dict:
    """CPU model, cores, versions, load, and the reference loops' speeds (ns per step)."""
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "reference_python_int_loop_ns_per_iteration": round(_python_loop_ns(), 2),
        "reference_numpy_sqrt_ns_per_element": round(_numpy_ns(), 3),
        "reference_repeats": REPEATS,
    }


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The first ``model name`` in /proc/cpuinfo, else what ``platform`` knows."""
    try:
        for line in cpuinfo.read_text().splitlines():
            name, _, value = line.partition(":")
            if name.strip() == "model name":
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _python_loop_ns() -> float:
    """One iteration of a fixed integer loop (add, multiply, modulo): the interpreter's speed."""

    def run() -> float:
        started = time.perf_counter_ns()
        total = 0
        for i in range(PYTHON_LOOP_ITERATIONS):
            total += i * i % 7
        return (time.perf_counter_ns() - started) / PYTHON_LOOP_ITERATIONS

    return statistics.median(run() for _ in range(REPEATS))


def _numpy_ns() -> float:
    """One element of ``np.sqrt`` over a 1M float64 array (8 MB in, 8 MB out): memory and SIMD."""
    values = np.arange(1.0, NUMPY_ELEMENTS + 1.0)
    out = np.empty_like(values)

    def run() -> float:
        started = time.perf_counter_ns()
        for _ in range(NUMPY_PASSES):
            np.sqrt(values, out=out)
        return (time.perf_counter_ns() - started) / (NUMPY_PASSES * NUMPY_ELEMENTS)

    return statistics.median(run() for _ in range(REPEATS))
