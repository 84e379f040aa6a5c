"""Run OpenVINO's own benchmark_app on the same model and flags, and compare medians.

A second, independent measurement in the same run is the cheapest way to trust ours:
the two tools share the runtime but not the harness, so a disagreement over the
tolerance points at the harness (or at a machine too busy to measure on).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from attnseg.benchmarking.config import BenchmarkConfig, ReportType
from attnseg.benchmarking.report import JSON_STATS_NAME, parse_console_block, read_json_stats
from attnseg.benchmarking.result import BenchmarkAppComparison
from attnseg.errors import BenchmarkError

log = logging.getLogger(__name__)
DEFAULT_TOLERANCE = 0.10


def find_benchmark_app() -> Path:
    """benchmark_app next to this Python (the same venv) first, then on PATH."""
    exe = "benchmark_app.exe" if os.name == "nt" else "benchmark_app"
    beside = Path(sys.executable).parent / exe
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("benchmark_app")
    if found:
        return Path(found)
    raise BenchmarkError(
        "benchmark_app was not found next to this Python or on PATH; it comes with the openvino "
        "package (pip install openvino) — install it or drop --vs-benchmark-app."
    )


def benchmark_app_command(cfg: BenchmarkConfig, report_folder: str | Path, exe: Path | None = None) -> list[str]:
    """The benchmark_app argv for ``cfg`` (no counters; JSON statistics into ``report_folder``)."""
    from dataclasses import replace

    cmd = [str(exe or find_benchmark_app())]
    for flag, value in replace(cfg, report_type=ReportType.NO_COUNTERS).benchmark_app_args(str(report_folder), True):
        cmd.append(flag)
        if value != "":
            cmd.append(value)
    return cmd


def run_benchmark_app(cfg: BenchmarkConfig, timeout_s: float | None = None) -> tuple[dict[str, float], list[str], str]:
    """Run benchmark_app; return (numbers, command, output). Numbers come from its JSON report
    and its console block (the more precise of the two where both have them)."""
    with tempfile.TemporaryDirectory(prefix="attnseg-benchmark-app-") as tmp:
        cmd = benchmark_app_command(cfg, tmp)
        log.info("Running %s", " ".join(cmd))
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            raise BenchmarkError(f"benchmark_app did not finish within {timeout_s:.0f} s.") from None
        output = proc.stdout + proc.stderr
        if proc.returncode != 0:
            errors = [ln for ln in output.splitlines() if "[ ERROR ]" in ln]
            detail = errors[-1].split("]", 1)[-1].strip() if errors else output.strip().splitlines()[-1:]
            raise BenchmarkError(f"benchmark_app failed (exit {proc.returncode}): {detail}")
        numbers: dict[str, float] = {}
        report = Path(tmp) / JSON_STATS_NAME
        if report.exists():
            res = read_json_stats(report).get("execution_results", {})
            for key, name in (("latency (ms)", "median_ms"), ("avg latency", "avg_ms"), ("min latency", "min_ms"),
                              ("max latency", "max_ms"), ("throughput", "throughput_fps"),
                              ("total number of iterations", "count"), ("total execution time (ms)", "duration_ms")):
                if key in res:
                    numbers[name] = float(res[key])
        # the console block prints microseconds below 1 ms: at least as precise as the report
        numbers.update(parse_console_block(output))
    if "median_ms" not in numbers:
        raise BenchmarkError("benchmark_app ran but its output has no median latency to compare with.")
    return numbers, cmd, output


def verdict(ratio: float, tolerance: float, drift: float | None, rerun_ratio: float | None) -> str:
    """agree / disagree / inconclusive.

    Runs one after the other on a shared machine see different loads. With a rerun of ours
    after benchmark_app, the two tools agree if benchmark_app is within the tolerance of
    either of our runs (or between them); if they do not but our own two runs differ by
    more than the tolerance, the machine changed speed and the check is inconclusive.
    """
    if abs(ratio - 1.0) <= tolerance:
        return "agree"
    if rerun_ratio is not None:
        if abs(rerun_ratio - 1.0) <= tolerance or (ratio - 1.0) * (rerun_ratio - 1.0) < 0:
            return "agree"
        if drift is not None and abs(drift - 1.0) > tolerance:
            return "inconclusive"
    return "disagree"


def compare_with_benchmark_app(cfg: BenchmarkConfig, attnseg_median_ms: float,
                               tolerance: float = DEFAULT_TOLERANCE,
                               rerun: Callable[[], float] | None = None) -> BenchmarkAppComparison:
    """Run benchmark_app with ``cfg``'s flags and compare its median with ours.

    ``rerun`` (optional) measures our median again right after benchmark_app, so drift in
    the machine's speed can be told apart from a disagreement between the tools.
    """
    numbers, cmd, _ = run_benchmark_app(cfg)
    ba = numbers["median_ms"]
    ratio = attnseg_median_ms / ba if ba > 0 else float("inf")
    rerun_ms = rerun() if rerun is not None else None
    rerun_ratio = rerun_ms / ba if rerun_ms is not None and ba > 0 else None
    drift = rerun_ms / attnseg_median_ms if rerun_ms is not None and attnseg_median_ms > 0 else None
    result = verdict(ratio, tolerance, drift, rerun_ratio)
    return BenchmarkAppComparison(
        command=cmd,
        benchmark_app_median_ms=ba,
        benchmark_app_avg_ms=numbers.get("avg_ms", float("nan")),
        benchmark_app_throughput_fps=numbers.get("throughput_fps", float("nan")),
        benchmark_app_count=int(numbers.get("count", 0)),
        attnseg_median_ms=attnseg_median_ms,
        ratio=ratio,
        tolerance=tolerance,
        agree=result == "agree",
        attnseg_rerun_median_ms=rerun_ms,
        verdict=result,
    )
