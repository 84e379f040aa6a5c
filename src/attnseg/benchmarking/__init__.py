"""Benchmarks: benchmark_app-style OpenVINO timing, end-to-end timing, backend comparison.

Importing this package is cheap: openvino is imported inside the timing functions, and
torch / onnxruntime / nncf / matplotlib only inside the ``compare`` backends that use them.

    from attnseg.benchmarking import benchmark_openvino, format_console, write_reports
    result = benchmark_openvino("model.xml", hint="latency", niter=100)
    print(format_console(result)); write_reports(result, "reports/")
"""

from attnseg.benchmarking.benchmark_app import compare_with_benchmark_app, find_benchmark_app, run_benchmark_app
from attnseg.benchmarking.config import Api, BenchmarkConfig, Hint, ReportType, parse_shape
from attnseg.benchmarking.e2e import benchmark_end_to_end
from attnseg.benchmarking.machine import MachineInfo, machine_info
from attnseg.benchmarking.openvino_bench import benchmark_openvino, run_benchmark
from attnseg.benchmarking.report import (
    format_console,
    parse_console_block,
    read_csv_report,
    read_json_stats,
    report_rows,
    write_reports,
)
from attnseg.benchmarking.result import BenchmarkAppComparison, BenchmarkResult, EndToEndResult, StageTiming
from attnseg.benchmarking.stats import LatencyStats, percentile

__all__ = [
    "Api", "BenchmarkAppComparison", "BenchmarkConfig", "BenchmarkResult", "EndToEndResult", "Hint",
    "LatencyStats", "MachineInfo", "ReportType", "StageTiming", "benchmark_end_to_end", "benchmark_openvino",
    "compare_with_benchmark_app", "find_benchmark_app", "format_console", "machine_info", "parse_console_block",
    "parse_shape", "percentile", "read_csv_report", "read_json_stats", "report_rows", "run_benchmark",
    "run_benchmark_app", "write_reports",
]
