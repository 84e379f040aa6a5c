"""seg-benchmark MODEL: the console block and the report files agree; bad input -> one clear error."""

from __future__ import annotations

import json

import pytest

from attnseg.benchmarking import parse_console_block, read_csv_report
from attnseg.cli.benchmark import main


def test_quick_run_console_and_reports_agree(bare_ir, tmp_path, capsys):
    rc = main([str(bare_ir), "-niter", "3", "-hint", "latency", "-o", str(tmp_path / "rep")])
    out = capsys.readouterr().out
    assert rc == 0
    assert "Count:            3 iterations" in out and "Throughput:" in out and "Speed flags:" in out
    console = parse_console_block(out)
    report = read_csv_report(tmp_path / "rep" / "benchmark_report.csv")
    ex = report["Execution results"]
    assert int(ex["total number of iterations"]) == int(console["count"]) == 3
    assert ex["throughput"] == f"{console['throughput_fps']:.2f}"
    assert float(ex["latency (ms)"]) == pytest.approx(console["median_ms"], abs=0.0051)
    assert report["Command line parameters"]["-niter"] == "3"
    assert (tmp_path / "rep" / "benchmark_report.json").is_file()
    assert (tmp_path / "rep" / "attnseg_benchmark.json").is_file()


def test_json_output_with_images_and_benchmark_app(exported_ir, few_images, capsys):
    rc = main(["-m", str(exported_ir), "-niter", "2", "-hint", "latency", "--images", str(few_images),
               "--vs-benchmark-app", "--json"])
    data = json.loads(capsys.readouterr().out)  # stdout is pure JSON
    assert rc == 0
    assert data["count"] == 2 and len(data["latencies_ms"]) == 2
    assert data["end_to_end"]["count"] == 2 and data["end_to_end"]["stages"][0]["name"] == "decode"
    ba = data["benchmark_app"]
    assert ba["benchmark_app_count"] == 2
    assert ba["ratio"] == pytest.approx(data["latency"]["median_ms"] / ba["benchmark_app_median_ms"])
    assert ba["attnseg_rerun_median_ms"] > 0 and ba["verdict"] in ("agree", "disagree", "inconclusive")
    assert ba["drift"] == pytest.approx(ba["attnseg_rerun_median_ms"] / data["latency"]["median_ms"])


@pytest.mark.parametrize("argv, message", [
    (["missing.xml", "-niter", "3"], "missing.xml does not exist"),
    ([], "No model given"),
    (["{ir}", "-niter", "0"], "-niter must be at least 1"),
    (["{ir}", "-niter", "three"], "-niter takes a whole number"),
    (["{ir}", "-hint", "fast"], "invalid choice: 'fast'"),
    (["{ir}", "-api", "parallel"], "invalid choice: 'parallel'"),
    (["{ir}", "--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    (["{ir}", "-nstreams", "2", "-hint", "latency"], "use -hint none with -nstreams"),
    (["{ir}", "-d", "NPU", "-niter", "1"], "Device NPU is not available"),
    (["{ir}", "-shape", "[1,3,64", "-niter", "1"], "-shape"),
    (["{ir}", "--images", "/no/such/folder", "-niter", "1", "-q"], "does not exist"),
])
def test_bad_input_is_one_clear_error(bare_ir, capsys, argv, message):
    argv = [a.replace("{ir}", str(bare_ir)) for a in argv]
    rc = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and err[0].startswith("seg-benchmark: error:") and message in err[0]
    assert "Traceback" not in err[0]
