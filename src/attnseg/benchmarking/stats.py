"""Latency statistics computed the way benchmark_app computes them.

benchmark_app sorts the per-request latencies and takes the nearest-rank percentile
``values[ceil(n * p / 100) - 1]`` (no interpolation), so its "median" of an even count is
the lower middle value. Using the same rule keeps our figures comparable with its reports.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass


def percentile(sorted_values: Sequence[float], percent: float) -> float:
    """Nearest-rank percentile of already sorted values (benchmark_app's definition)."""
    if not sorted_values:
        raise ValueError("percentile of an empty sequence")
    if not 0 < percent <= 100:
        raise ValueError(f"percent must be in (0, 100], got {percent}")
    index = max(math.ceil(len(sorted_values) * percent / 100) - 1, 0)
    return float(sorted_values[index])


@dataclass(frozen=True)
class LatencyStats:
    """Summary of per-inference latencies in milliseconds."""

    count: int
    median_ms: float
    avg_ms: float
    min_ms: float
    max_ms: float
    p90_ms: float
    p99_ms: float
    std_ms: float

    @classmethod
    def from_samples(cls, samples_ms: Iterable[float]) -> LatencyStats:
        values = sorted(float(v) for v in samples_ms)
        if not values:
            raise ValueError("no latency samples")
        n = len(values)
        avg = sum(values) / n
        var = sum((v - avg) ** 2 for v in values) / n
        return cls(
            count=n,
            median_ms=percentile(values, 50),
            avg_ms=avg,
            min_ms=values[0],
            max_ms=values[-1],
            p90_ms=percentile(values, 90),
            p99_ms=percentile(values, 99),
            std_ms=math.sqrt(var),
        )

    def to_dict(self) -> dict[str, float]:
        return asdict(self)
