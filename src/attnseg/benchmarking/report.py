"""Report writers and readers in benchmark_app's formats (stdlib only).

* ``format_console``: benchmark_app's closing block (Count, Duration, Latency Median /
  Average / Min / Max, Throughput) followed by p90 / p99, first inference, read / compile
  time and peak memory, under a machine header.
* ``benchmark_report.csv``: ``;``-separated, the three sections benchmark_app writes
  (``Command line parameters``, ``Configuration setup``, ``Execution results``) with its
  keys and 2-decimal values, then two extra sections (``Extended results``, ``Machine``)
  that tools reading the standard keys skip.
* ``benchmark_report.json``: the ``-json_stats`` layout (``cmd_options``,
  ``configuration_setup``, ``execution_results``, string values) plus the same extras.
* ``benchmark_<report_type>_report.csv/.json`` for per-layer counters, as benchmark_app.
* ``attnseg_benchmark.json``: the full result, unrounded, with every latency sample.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from attnseg.atomic import atomic_file, make_folder
from attnseg.benchmarking.config import ReportType
from attnseg.benchmarking.result import BenchmarkResult

SEP = ";"
CSV_NAME = "benchmark_report.csv"
JSON_STATS_NAME = "benchmark_report.json"
FULL_JSON_NAME = "attnseg_benchmark.json"
SECTIONS = {
    "Command line parameters": "cmd_options",
    "Configuration setup": "configuration_setup",
    "Execution results": "execution_results",
    "Extended results": "extended_results",
    "Machine": "machine",
}
PREFIX = "[ INFO ] "


def _f2(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _ms(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value}"


# --------------------------------------------------------------------------- rows
def report_rows(result: BenchmarkResult, report_folder: str | None = None,
                json_stats: bool = False) -> dict[str, list[tuple[str, str]]]:
    """Every section as ordered (key, value) pairs; the single source of CSV and JSON."""
    cfg = result.config
    duration_s = cfg.duration_s if cfg.duration_s else (0 if cfg.niter else None)
    if duration_s is None:
        from attnseg.benchmarking.config import default_duration_s

        duration_s = default_duration_s(cfg.device)
    setup = [
        ("topology", result.topology),
        ("target device", cfg.device),
        ("API", getattr(cfg.api, "value", str(cfg.api))),
        ("inference_only", "True"),
        ("precision", cfg.infer_precision or "UNSPECIFIED"),
        ("batch size", str(result.batch_size)),
        ("number of iterations", str(cfg.niter)),
        ("number of parallel infer requests", str(result.nireq)),
        ("duration (ms)", _ms(duration_s * 1000)),
    ]
    if cfg.nstreams is not None:
        setup.append((f"number of {cfg.device} streams", str(result.nstreams)))
    execution = [("read model time (ms)", _f2(result.read_model_ms))]
    if result.reshape_ms is not None:
        execution.append(("reshape model time (ms)", _f2(result.reshape_ms)))
    execution += [
        ("compile model time (ms)", _f2(result.compile_ms)),
        ("first inference time (ms)", _f2(result.first_inference_ms)),
        ("total execution time (ms)", _f2(result.duration_ms)),
        ("total number of iterations", str(result.count)),
        ("latency (ms)", _f2(result.latency.median_ms)),
        ("avg latency", _f2(result.latency.avg_ms)),
        ("min latency", _f2(result.latency.min_ms)),
        ("max latency", _f2(result.latency.max_ms)),
        ("throughput", _f2(result.throughput_fps)),
    ]
    lat = result.latency
    extended = [
        ("latency (90 percentile) (ms)", _f2(lat.p90_ms)),
        ("latency (99 percentile) (ms)", _f2(lat.p99_ms)),
        ("latency std (ms)", _f2(lat.std_ms)),
        ("peak memory RSS (MB)", _f2(result.peak_rss_mb)),
        ("compile memory increase (MB)", _f2(result.compile_rss_increase_mb)),
        ("process CPU share (%)", _f2(None if result.cpu_share is None else 100 * result.cpu_share)),
        ("inference precision", result.inference_precision),
        ("performance hint", result.device_config.get("PERFORMANCE_HINT", "")),
        ("number of streams", "" if result.nstreams is None else str(result.nstreams)),
        ("number of threads", result.device_config.get("INFERENCE_NUM_THREADS", "")),
        ("execution devices", ",".join(result.execution_devices)),
        ("input shapes", " ".join(f"{p['name']}{p['shape']}" for p in result.inputs)),
    ]
    if result.end_to_end:
        e2e = result.end_to_end
        extended.append(("end-to-end images", str(e2e.num_images)))
        extended.append(("end-to-end iterations", str(e2e.count)))
        for stage in e2e.stages:
            extended.append((f"end-to-end {stage.name} median (ms)", _f2(stage.latency.median_ms)))
            extended.append((f"end-to-end {stage.name} avg (ms)", _f2(stage.latency.avg_ms)))
        extended.append(("end-to-end throughput", _f2(e2e.throughput_fps)))
        extended.append(("end-to-end timing source", e2e.timing_source))
    if result.benchmark_app:
        ba = result.benchmark_app
        extended += [
            ("benchmark_app latency (ms)", _f2(ba.benchmark_app_median_ms)),
            ("benchmark_app throughput", _f2(ba.benchmark_app_throughput_fps)),
            ("attnseg / benchmark_app latency ratio", f"{ba.ratio:.3f}"),
            ("attnseg latency after benchmark_app (ms)", _f2(ba.attnseg_rerun_median_ms)),
            ("agrees within tolerance", str(ba.agree)),
            ("benchmark_app check", ba.verdict),
        ]
    m = result.machine
    machine = [
        ("cpu model", m.cpu_model),
        ("cpu speed flags", " ".join(m.cpu_flags)),
        ("logical cores", str(m.logical_cores)),
        ("physical cores", "" if m.physical_cores is None else str(m.physical_cores)),
        ("usable cores", str(m.usable_cores)),
        ("memory (MB)", "" if m.memory_total_mb is None else f"{m.memory_total_mb:.0f}"),
        ("os", m.os),
        ("python", m.python),
        ("load average at start", " ".join(f"{v:.2f}" for v in m.load_average)),
        ("load average at end", " ".join(f"{v:.2f}" for v in result.load_average_end)),
        ("timestamp", m.timestamp),
    ] + [(f"{name} version", version) for name, version in m.versions.items()]
    return {
        "Command line parameters": cfg.benchmark_app_args(report_folder, json_stats),
        "Configuration setup": setup,
        "Execution results": execution,
        "Extended results": extended,
        "Machine": machine,
    }


# --------------------------------------------------------------------------- console
def _console_latency(value_ms: float, avg_ms: float) -> str:
    """Always milliseconds (benchmark_app switches to microseconds under 1 ms, so two runs of one
    model with different hints printed different units); sub-millisecond values keep 3 decimals."""
    return f"{value_ms:.3f} ms" if avg_ms < 1.0 else f"{value_ms:.2f} ms"


def format_console(result: BenchmarkResult, header: bool = True) -> str:
    """benchmark_app's closing block, extended; with ``header`` the machine and config first."""
    lat, cfg = result.latency, result.config
    lines: list[str] = []
    if header:
        lines += result.machine.summary_lines()
        lines.append(f"Model: {cfg.model_path} ({' '.join(p['name'] + p['shape'] for p in result.inputs)})")
        lines.append(
            f"Device: {cfg.device}, hint {getattr(cfg.hint, 'value', cfg.hint)}, api {getattr(cfg.api, 'value', cfg.api)}, "
            f"{result.nireq} infer request(s), {result.nstreams} stream(s), "
            f"{result.device_config.get('INFERENCE_NUM_THREADS', '?')} thread(s), "
            f"inference precision {result.inference_precision}"
        )
    lines += [
        f"Execution Devices:{result.execution_devices}",
        f"Count:            {result.count} iterations",
        f"Duration:         {result.duration_ms:.2f} ms",
        "Latency:",
        f"   Median:        {_console_latency(lat.median_ms, lat.avg_ms)}",
        f"   Average:       {_console_latency(lat.avg_ms, lat.avg_ms)}",
        f"   Min:           {_console_latency(lat.min_ms, lat.avg_ms)}",
        f"   Max:           {_console_latency(lat.max_ms, lat.avg_ms)}",
        f"   90 percentile: {_console_latency(lat.p90_ms, lat.avg_ms)}",
        f"   99 percentile: {_console_latency(lat.p99_ms, lat.avg_ms)}",
        f"Throughput:   {result.throughput_fps:.2f} FPS",
        f"First inference: {result.first_inference_ms:.2f} ms",
        f"Read model:      {result.read_model_ms:.2f} ms",
        f"Compile model:   {result.compile_ms:.2f} ms",
    ]
    if result.peak_rss_mb is not None:
        extra = f" (compile +{result.compile_rss_increase_mb:.1f} MB)" if result.compile_rss_increase_mb is not None else ""
        lines.append(f"Peak memory:     {result.peak_rss_mb:.1f} MB RSS{extra}")
    if result.load_average_end:
        lines.append(f"Load average at end: {' '.join(f'{v:.2f}' for v in result.load_average_end)}")
    if result.cpu_share is not None:
        busy = " (low: other processes held the CPU; wall-clock figures are inflated)" if result.cpu_share < 0.5 else ""
        lines.append(f"CPU share:       {100 * result.cpu_share:.0f}% of {result.machine.usable_cores} cores "
                     f"while measuring{busy}")
    if result.end_to_end:
        lines += format_end_to_end(result.end_to_end)
    if result.benchmark_app:
        lines += format_benchmark_app(result.benchmark_app)
    return "\n".join(PREFIX + ln for ln in lines)


def format_end_to_end(e2e: Any) -> list[str]:
    lines = [(f"End-to-end on {e2e.num_images} image(s) from {e2e.images_dir}, {e2e.count} iterations "
             f"at {e2e.input_size[0]}x{e2e.input_size[1]} ({e2e.timing_source}):")]
    for stage in e2e.stages:
        lines.append(f"   {stage.name + ':':<14} median {stage.latency.median_ms:8.2f} ms   "
                     f"avg {stage.latency.avg_ms:8.2f} ms   p90 {stage.latency.p90_ms:8.2f} ms")
    lines.append(f"   Inference only (benchmark above): median {e2e.inference_only_median_ms:.2f} ms")
    lines.append(f"   End-to-end throughput: {e2e.throughput_fps:.2f} FPS")
    return lines


def format_benchmark_app(ba: Any) -> list[str]:
    agree = f"agree (within {ba.tolerance:.0%})"
    if abs(ba.ratio - 1) > ba.tolerance and ba.attnseg_rerun_median_ms:
        agree = (f"agree with our rerun (ratio {ba.attnseg_rerun_median_ms / ba.benchmark_app_median_ms:.3f}); "
                 f"the machine's speed drifted by {abs((ba.drift or 1) - 1):.0%} between runs")
    verdicts = {
        "agree": agree,
        "inconclusive": (f"INCONCLUSIVE: the machine's speed changed by {abs((ba.drift or 1) - 1):.0%} between our "
                         "two runs (busy machine); rerun when it is quiet"),
    }
    verdict = verdicts.get(ba.verdict or ("agree" if ba.agree else ""), f"DISAGREE by more than {ba.tolerance:.0%}")
    lines = [
        "benchmark_app on the same model and flags:",
        (f"   benchmark_app median: {ba.benchmark_app_median_ms:.2f} ms  ({ba.benchmark_app_count} iterations, "
         f"{ba.benchmark_app_throughput_fps:.2f} FPS)"),
        f"   attnseg median:       {ba.attnseg_median_ms:.2f} ms (before benchmark_app)",
    ]
    if ba.attnseg_rerun_median_ms is not None:
        lines.append(f"   attnseg median:       {ba.attnseg_rerun_median_ms:.2f} ms (after benchmark_app)")
    lines.append(f"   ratio attnseg/benchmark_app: {ba.ratio:.3f} -> {verdict}")
    return lines


_CONSOLE_PATTERNS = {
    "count": r"Count:\s+(\d+) iterations",
    "duration_ms": r"Duration:\s+([\d.]+) ms",
    "median_ms": r"Median:\s+([\d.]+ [mu]s)",
    "avg_ms": r"Average:\s+([\d.]+ [mu]s)",
    "min_ms": r"Min:\s+([\d.]+ [mu]s)",
    "max_ms": r"Max:\s+([\d.]+ [mu]s)",
    "p90_ms": r"90 percentile:\s+([\d.]+ [mu]s)",
    "p99_ms": r"99 percentile:\s+([\d.]+ [mu]s)",
    "throughput_fps": r"Throughput:\s+([\d.]+) FPS",
    "first_inference_ms": r"First inference(?: took)?:?\s+([\d.]+) ms",
    "compile_ms": r"Compile model(?: took)?:?\s+([\d.]+) ms",
}


def parse_console_block(text: str) -> dict[str, float]:
    """Read the numbers back from benchmark_app's (or our) closing block; latencies in ms."""
    out: dict[str, float] = {}
    for key, pattern in _CONSOLE_PATTERNS.items():
        matches = re.findall(pattern, text)
        if not matches:
            continue
        raw = matches[-1]
        if raw.endswith(" us"):
            out[key] = float(raw[:-3]) / 1000.0
        elif raw.endswith(" ms"):
            out[key] = float(raw[:-3])
        else:
            out[key] = float(raw)
    return out


# --------------------------------------------------------------------------- files
def write_csv_report(rows: dict[str, list[tuple[str, str]]], path: Path) -> Path:
    """benchmark_app's CsvStatisticsReport layout: a section title, key;value lines, a blank line."""
    with atomic_file(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as f:
        for section, pairs in rows.items():
            f.write(f"{section}\n")
            f.writelines(f"{key}{SEP}{value}\n" for key, value in pairs)
            f.write("\n")
    return path


def write_json_stats(rows: dict[str, list[tuple[str, str]]], path: Path) -> Path:
    """benchmark_app's JsonStatisticsReport layout (one line, string values) plus extras."""
    data = {SECTIONS[section]: {k: v for k, v in pairs} for section, pairs in rows.items()}
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(data), encoding="utf-8")
    return path


def _counter_rows(perf: list[dict[str, Any]]) -> tuple[list[list[str]], float, float]:
    rows, total, total_cpu = [], 0.0, 0.0
    for pi in perf:
        rows.append([pi["name"], pi["status"], pi["node_type"], pi["exec_type"],
                     f"{pi['real_time_ms']:.3f}", f"{pi['cpu_time_ms']:.3f}"])
        total += pi["real_time_ms"]
        total_cpu += pi["cpu_time_ms"]
    return rows, total, total_cpu


def average_counters(perf_counters: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per-layer times averaged over the infer requests, as benchmark_app's average report."""
    avg: dict[str, dict[str, Any]] = {}
    for request in perf_counters:
        for pi in request:
            if pi["name"] in avg:
                avg[pi["name"]]["real_time_ms"] += pi["real_time_ms"]
                avg[pi["name"]]["cpu_time_ms"] += pi["cpu_time_ms"]
            else:
                avg[pi["name"]] = dict(pi)
    n = max(len(perf_counters), 1)
    for pi in avg.values():
        pi["real_time_ms"] /= n
        pi["cpu_time_ms"] /= n
    return list(avg.values())


def write_counter_reports(result: BenchmarkResult, folder: Path) -> list[Path]:
    rtype = ReportType(result.config.report_type)
    if rtype is ReportType.NO_COUNTERS or not result.perf_counters:
        return []
    per_request = result.perf_counters if rtype is ReportType.DETAILED_COUNTERS else [average_counters(result.perf_counters)]
    csv_path = folder / f"benchmark_{rtype.value}_report.csv"
    header = ["layerName", "execStatus", "layerType", "execType", "realTime (ms)", "cpuTime (ms)"]
    json_blocks = []
    with atomic_file(csv_path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as f:
        for perf in per_request:
            rows, total, total_cpu = _counter_rows(perf)
            f.write(SEP.join(header) + "\n")
            f.writelines(SEP.join(row) + "\n" for row in rows)
            f.write(SEP.join(["Total", "", "", "", f"{total:.3f}", f"{total_cpu:.3f}"]) + "\n\n")
            json_blocks.append({
                "nodes": [dict(zip(("name", "status", "node_type", "exec_type", "real_time", "cpu_time"), r))
                          for r in rows],
                "total_real_time": f"{total:.3f}",
                "total_cpu_time": f"{total_cpu:.3f}",
            })
    json_path = folder / f"benchmark_{rtype.value}_report.json"
    payload = ({"report_type": "detailed", "detailed_performance": json_blocks}
               if rtype is ReportType.DETAILED_COUNTERS else {"report_type": "average", "avg_performance": json_blocks[0]})
    with atomic_file(json_path) as tmp:
        tmp.write_text(json.dumps(payload, indent=4), encoding="utf-8")
    return [csv_path, json_path]


def write_reports(result: BenchmarkResult, folder: str | Path) -> dict[str, Path]:
    """Write every report file into ``folder`` (created if missing); returns name -> path."""
    folder = make_folder(folder, "report folder")
    rows = report_rows(result, report_folder=str(folder))
    paths = {
        "csv": write_csv_report(rows, folder / CSV_NAME),
        "json_stats": write_json_stats(rows, folder / JSON_STATS_NAME),
    }
    full = folder / FULL_JSON_NAME
    with atomic_file(full) as tmp:
        tmp.write_text(json.dumps(result.to_dict(), indent=2, default=str) + "\n", encoding="utf-8")
    paths["json"] = full
    for p in write_counter_reports(result, folder):
        paths[p.stem] = p
    return paths


def read_csv_report(path: str | Path) -> dict[str, dict[str, str]]:
    """Parse a ``benchmark_report.csv`` (ours or benchmark_app's) into {section: {key: value}}."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            current = None
            continue
        if current is None and SEP not in line:
            current = sections.setdefault(line.strip(), {})
            continue
        if current is None:
            raise ValueError(f"{path}: key;value line outside a section: {line!r}")
        key, _, value = line.partition(SEP)
        current[key] = value
    return sections


def read_json_stats(path: str | Path) -> dict[str, dict[str, str]]:
    """Parse a ``-json_stats`` ``benchmark_report.json`` (ours or benchmark_app's)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))
