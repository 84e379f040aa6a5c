"""Report files: benchmark_app's sections and keys, and the same numbers as console and JSON."""

from __future__ import annotations

import json
import subprocess

import pytest

from attnseg.benchmarking import (
    benchmark_openvino,
    find_benchmark_app,
    format_console,
    parse_console_block,
    read_csv_report,
    read_json_stats,
    write_reports,
)
from attnseg.benchmarking.report import FULL_JSON_NAME

STANDARD = ["Command line parameters", "Configuration setup", "Execution results"]


@pytest.fixture(scope="module")
def result(exported_ir):
    return benchmark_openvino(exported_ir, hint="latency", niter=3)


@pytest.fixture(scope="module")
def benchmark_app_report(exported_ir, tmp_path_factory):
    """benchmark_app's own CSV and JSON for the same model and flags."""
    out = {}
    for kind, extra in (("csv", []), ("json", ["-json_stats"])):
        folder = tmp_path_factory.mktemp(f"ba_{kind}")
        cmd = [str(find_benchmark_app()), "-m", str(exported_ir), "-hint", "latency", "-niter", "3",
               "-report_type", "no_counters", "-report_folder", str(folder), *extra]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stdout[-2000:]
        out[kind] = folder
        out[f"{kind}_stdout"] = proc.stdout
    return out


def test_csv_has_benchmark_apps_sections_and_keys(result, benchmark_app_report, tmp_path):
    paths = write_reports(result, tmp_path / "rep")
    ours = read_csv_report(paths["csv"])
    theirs = read_csv_report(benchmark_app_report["csv"] / "benchmark_report.csv")
    assert list(ours)[:3] == STANDARD == list(theirs)
    for section in STANDARD[1:]:
        assert list(ours[section]) == list(theirs[section]), section
    assert set(theirs["Command line parameters"]) <= set(ours["Command line parameters"])
    assert list(ours)[3:] == ["Extended results", "Machine"]
    # benchmark_app's layout: title line, key;value lines, blank line between sections
    text = paths["csv"].read_text()
    assert text.startswith("Command line parameters\n-m;") and "\n\nConfiguration setup\ntopology;" in text


def test_json_stats_has_benchmark_apps_layout(result, benchmark_app_report, tmp_path):
    paths = write_reports(result, tmp_path / "rep")
    ours = read_json_stats(paths["json_stats"])
    theirs = read_json_stats(benchmark_app_report["json"] / "benchmark_report.json")
    assert list(ours)[:3] == list(theirs) == ["cmd_options", "configuration_setup", "execution_results"]
    for key in ("configuration_setup", "execution_results"):
        assert list(ours[key]) == list(theirs[key])
        assert all(isinstance(v, str) for v in ours[key].values())


def test_files_carry_the_console_and_json_numbers(result, tmp_path):
    paths = write_reports(result, tmp_path / "rep")
    csv_rows = read_csv_report(paths["csv"])
    stats = read_json_stats(paths["json_stats"])
    full = json.loads((tmp_path / "rep" / FULL_JSON_NAME).read_text())
    console = parse_console_block(format_console(result))
    ex, ext = csv_rows["Execution results"], csv_rows["Extended results"]
    assert stats["execution_results"] == ex and stats["extended_results"] == ext

    lat = result.latency
    pairs = [("latency (ms)", lat.median_ms, "median_ms"), ("avg latency", lat.avg_ms, "avg_ms"),
             ("min latency", lat.min_ms, "min_ms"), ("max latency", lat.max_ms, "max_ms")]
    for key, value, name in pairs:
        assert ex[key] == f"{value:.2f}"
        assert console[name] == pytest.approx(value, abs=0.006)  # console rounds to 0.01 ms or us
        assert full["latency"][name] == value
    assert ext["latency (90 percentile) (ms)"] == f"{lat.p90_ms:.2f}"
    assert ext["latency (99 percentile) (ms)"] == f"{lat.p99_ms:.2f}"
    assert console["p90_ms"] == pytest.approx(lat.p90_ms, abs=0.006)
    assert ex["throughput"] == f"{result.throughput_fps:.2f}" == f"{console['throughput_fps']:.2f}"
    assert int(ex["total number of iterations"]) == result.count == int(console["count"]) == full["count"]
    assert ex["total execution time (ms)"] == f"{result.duration_ms:.2f}" == f"{console['duration_ms']:.2f}"
    assert ex["first inference time (ms)"] == f"{result.first_inference_ms:.2f}"
    assert f"{console['first_inference_ms']:.2f}" == ex["first inference time (ms)"]
    assert ex["compile model time (ms)"] == f"{result.compile_ms:.2f}" == f"{console['compile_ms']:.2f}"
    assert ex["read model time (ms)"] == f"{result.read_model_ms:.2f}"
    assert ext["peak memory RSS (MB)"] == f"{result.peak_rss_mb:.2f}"
    assert ext["process CPU share (%)"] == f"{100 * result.cpu_share:.2f}" and full["cpu_share"] == result.cpu_share
    assert ext["inference precision"] == result.inference_precision == full["inference_precision"]
    setup = csv_rows["Configuration setup"]
    assert (setup["API"], setup["number of iterations"], setup["number of parallel infer requests"]) == (
        "sync", "3", "1")
    machine = csv_rows["Machine"]
    assert machine["cpu model"] == result.machine.cpu_model
    assert machine["openvino version"] == result.machine.versions["openvino"]
    assert full["latencies_ms"] == result.latencies_ms


def test_console_block_matches_benchmark_apps(result, benchmark_app_report):
    ours = format_console(result, header=False).splitlines()
    theirs = [ln for ln in benchmark_app_report["csv_stdout"].splitlines() if ln.startswith("[ INFO ]")]
    start = next(i for i, ln in enumerate(theirs) if "Execution Devices" in ln)
    block = theirs[start:]
    labels = lambda lines: [ln.split(":")[0] for ln in lines]
    # benchmark_app's block, line for line, then our extra lines
    assert labels(ours[:8]) == labels(block[:8])
    assert ours[8].startswith("[ INFO ]    90 percentile:") and ours[9].startswith("[ INFO ]    99 percentile:")
    assert labels(ours[10:11]) == labels(block[8:9]) == ["[ INFO ] Throughput"]
    # our parser reads benchmark_app's console too
    parsed = parse_console_block("\n".join(block))
    assert parsed["count"] == 3 and parsed["median_ms"] > 0 and parsed["throughput_fps"] > 0


def test_counter_reports(bare_ir, tmp_path):
    r = benchmark_openvino(bare_ir, hint="latency", niter=2, report_type="average_counters")
    paths = write_reports(r, tmp_path)
    text = (tmp_path / "benchmark_average_counters_report.csv").read_text().strip().splitlines()
    assert text[0] == "layerName;execStatus;layerType;execType;realTime (ms);cpuTime (ms)"
    assert text[-1].startswith("Total;;;;")
    data = json.loads((tmp_path / "benchmark_average_counters_report.json").read_text())
    assert data["report_type"] == "average" and data["avg_performance"]["nodes"]
    assert "benchmark_average_counters_report" in paths


def test_report_folder_that_is_a_file(result, tmp_path):
    from attnseg.errors import InputFileError

    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(InputFileError, match="not a folder"):
        write_reports(result, f)
