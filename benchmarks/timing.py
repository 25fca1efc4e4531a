"""Shared timing helpers of the benchmark scripts (run them as ``python benchmarks/<script>.py``)."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: the bundled Lytro sample pair (520×520 colour, A = near focus)
SAMPLE_PAIR = [ROOT / "datasets/samples/lytro-01-A.jpg", ROOT / "datasets/samples/lytro-01-B.jpg"]


def median_time(fn, runs: int, warmup: int = 2) -> float:
    """Median wall time of ``fn()`` over ``runs`` calls, after ``warmup`` untimed calls (tracing)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)
