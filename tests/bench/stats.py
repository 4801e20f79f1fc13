"""Percentiles for benchmark reports."""

from __future__ import annotations

import math
from collections.abc import Sequence


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def summary(values: Sequence[float]) -> str:
    return f"n={len(values)} p50={pct(values, 50):.2f} ms p95={pct(values, 95):.2f} ms p99={pct(values, 99):.2f} ms"
