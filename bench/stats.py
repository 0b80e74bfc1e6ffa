"""Medians and spreads: every figure in the report is a median with its spread over repeats."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear between closest ranks; nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


@dataclass(frozen=True)
class Summary:
    """Median, quartiles and extremes of repeated measurements."""

    median: float
    q1: float
    q3: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        if not values:
            nan = float("nan")
            return cls(nan, nan, nan, nan, nan, 0)
        return cls(
            statistics.median(values),
            percentile(values, 25),
            percentile(values, 75),
            min(values),
            max(values),
            len(values),
        )

    def fmt(self, digits: int = 1, unit: str = "") -> str:
        """`12.3 ms (IQR 11.9-12.8, n=15)`, or min-max when there are too few for quartiles."""
        f = f"{{:.{digits}f}}"
        med = f.format(self.median) + unit
        if self.n >= 4:
            return f"{med} (IQR {f.format(self.q1)}-{f.format(self.q3)}, n={self.n})"
        if self.n > 1:
            return f"{med} (min-max {f.format(self.low)}-{f.format(self.high)}, n={self.n})"
        return f"{med} (n={self.n})"


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("nan")


def median_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """A distribution-free confidence interval of the median (order statistics, binomial ranks).

    With n = 15 samples the 95% interval runs from the 4th to the 12th smallest; with fewer than
    six there is no such interval, and the whole range stands in for it.
    """
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return float("nan"), float("nan")
    tail = (1 - confidence) / 2
    k, below = 0, 0.0  # k: how many order statistics each side lie outside the interval
    while k < n and below + math.comb(n, k) / 2**n <= tail:
        below += math.comb(n, k) / 2**n
        k += 1
    if k == 0:
        return ordered[0], ordered[-1]
    return ordered[k - 1], ordered[n - k]
