"""Shared by the benchmarks: wall-clock timing of a callable after a warm-up call."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def best_ms(fn: Callable[[], Any], repeats: int) -> float:
    """Best of ``repeats`` timed calls of ``fn`` (after one untimed warm-up), in milliseconds."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1e3
