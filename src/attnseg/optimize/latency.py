"""Side-by-side latency: the models compiled in one process, timed in interleaved synchronous
runs (model order rotated each round) so a load spike from another job hits all of them.

Deliberately simple (batch 1, ``infer()`` in a loop, medians): enough to say "INT8 takes
0.5x the FP32 time on this machine right now". ``seg-benchmark`` does the thorough job.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from attnseg.optimize.progress import progress
from attnseg.optimize.result import LatencyFigures, LatencyStats


def _loadavg() -> float:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return float("nan")


def _precision(compiled: Any) -> str:
    try:
        p = compiled.get_property("INFERENCE_PRECISION_HINT")
        return str(getattr(p, "get_type_name", lambda: p)()) if not isinstance(p, str) else p
    except RuntimeError:
        return "device default"


def measure(
    core: Any,
    models: dict[str, tuple[Any, dict[str, Any], str]],
    device: str,
    sample: np.ndarray,
    runs: int,
    warmup: int,
    quiet: bool = True,
) -> LatencyFigures:
    """Time each ``name -> (ov.Model, extra compile config, label)`` on ``sample``."""
    fig = LatencyFigures(device=device, hint="LATENCY", runs=int(runs), warmup=int(warmup), loadavg=[_loadavg()])
    requests: dict[str, Any] = {}
    labels: dict[str, tuple[str, str]] = {}
    for name, (model, extra, label) in models.items():
        compiled = core.compile_model(model, device, {"PERFORMANCE_HINT": "LATENCY", **extra})
        requests[name] = compiled.create_infer_request()
        labels[name] = (label, _precision(compiled))
    for _ in range(max(0, int(warmup))):
        for req in requests.values():
            req.infer({0: sample})
    times: dict[str, list[float]] = {name: [] for name in requests}
    names = list(requests)
    for r in progress(range(int(runs)), "Timing the models side by side", int(runs), quiet):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            req = requests[name]
            t0 = time.perf_counter()
            req.infer({0: sample})
            times[name].append((time.perf_counter() - t0) * 1e3)
    for name, t in times.items():
        a = np.asarray(t, dtype=np.float64)
        label, prec = labels[name]
        fig.models[name] = LatencyStats(
            median_ms=float(np.median(a)), mean_ms=float(a.mean()), min_ms=float(a.min()),
            p90_ms=float(np.percentile(a, 90)), runs=len(t), inference_precision=prec, label=label,
        )
    fig.loadavg.append(_loadavg())
    if os.cpu_count() and fig.loadavg[0] > os.cpu_count():
        fig.notes.append(f"the machine was busy (load average {fig.loadavg[0]} on {os.cpu_count()} CPUs): absolute "
                         "times are inflated, the ratio between the interleaved models is the figure to read")
    return fig
