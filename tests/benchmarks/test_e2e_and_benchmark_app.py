"""End-to-end stage timing on real images, and the benchmark_app cross-check."""

from __future__ import annotations

import pytest

from attnseg.benchmarking import BenchmarkConfig, benchmark_end_to_end, compare_with_benchmark_app
from attnseg.benchmarking.benchmark_app import benchmark_app_command
from attnseg.benchmarking.e2e import STAGES
from attnseg.errors import InputFileError


def _check_stages(e2e, count, images):
    assert [s.name for s in e2e.stages] == list(STAGES)
    assert e2e.count == count and e2e.num_images == images and e2e.input_size == [64, 64]
    for s in e2e.stages:
        assert s.latency.count == count and s.latency.min_ms >= 0
    total = e2e.stage("total").latency
    parts = sum(e2e.stage(n).latency.avg_ms for n in STAGES[:-1])
    assert parts <= total.avg_ms * 1.0001 + 1e-6  # total covers every stage
    assert e2e.throughput_fps > 0 and e2e.inference_only_median_ms == 1.5


def test_end_to_end_through_the_segmenter(exported_ir, few_images):
    cfg = BenchmarkConfig(exported_ir, hint="latency", niter=4).resolved()
    e2e = benchmark_end_to_end(cfg, few_images, inference_only_median_ms=1.5, niter=4)
    assert e2e.timing_source.startswith("attnseg.runtime.Segmenter")
    _check_stages(e2e, 4, 3)


def test_end_to_end_on_a_bare_ir(bare_ir, few_images):
    cfg = BenchmarkConfig(bare_ir, hint="latency").resolved()
    e2e = benchmark_end_to_end(cfg, few_images, inference_only_median_ms=1.5)  # default: every image once
    assert e2e.timing_source.startswith("attnseg.runtime.ModelCodec")
    _check_stages(e2e, 3, 3)


def test_end_to_end_needs_images(bare_ir, tmp_path):
    cfg = BenchmarkConfig(bare_ir).resolved()
    with pytest.raises(InputFileError, match="holds no images"):
        benchmark_end_to_end(cfg, tmp_path, 1.0)
    with pytest.raises(InputFileError, match="does not exist"):
        benchmark_end_to_end(cfg, tmp_path / "nope", 1.0)


def test_benchmark_app_command_uses_the_same_flags(bare_ir, tmp_path):
    cfg = BenchmarkConfig(bare_ir, hint="none", nstreams=1, nireq=1, niter=5, batch=1).resolved()
    cmd = benchmark_app_command(cfg, tmp_path)
    assert cmd[0].endswith("benchmark_app")
    joined = " ".join(cmd[1:])
    for part in (f"-m {bare_ir}", "-d CPU", "-hint none", "-api async", "-niter 5", "-nstreams 1", "-nireq 1",
                 "-b 1", "-report_type no_counters", f"-report_folder {tmp_path}", "-json_stats"):
        assert part in joined


def test_vs_benchmark_app_reports_both_medians(bare_ir):
    cfg = BenchmarkConfig(bare_ir, hint="latency", niter=3).resolved()
    cmp = compare_with_benchmark_app(cfg, attnseg_median_ms=2.0, tolerance=0.1)
    assert cmp.benchmark_app_count == 3
    assert cmp.benchmark_app_median_ms > 0 and cmp.benchmark_app_throughput_fps > 0
    assert cmp.ratio == pytest.approx(2.0 / cmp.benchmark_app_median_ms)
    assert cmp.agree == (abs(cmp.ratio - 1) <= 0.1) == (cmp.verdict == "agree")
    assert "-niter" in cmp.command and "latency" in cmp.command
    assert cmp.attnseg_rerun_median_ms is None and cmp.drift is None


def test_vs_benchmark_app_rerun_separates_drift_from_disagreement(bare_ir):
    cfg = BenchmarkConfig(bare_ir, hint="latency", niter=3).resolved()
    cmp = compare_with_benchmark_app(cfg, attnseg_median_ms=2.0, tolerance=0.1, rerun=lambda: 3.0)
    assert cmp.attnseg_rerun_median_ms == 3.0 and cmp.drift == pytest.approx(1.5)
    assert cmp.to_dict()["drift"] == pytest.approx(1.5)


@pytest.mark.parametrize("ratio, drift, rerun_ratio, expected", [
    (1.05, None, None, "agree"),
    (0.80, None, None, "disagree"),
    (0.80, 1.5, 1.20, "agree"),          # benchmark_app lies between our two runs
    (0.80, 1.2, 0.96, "agree"),          # our rerun is within the tolerance
    (0.50, 1.5, 0.75, "inconclusive"),   # we drifted by 50 %: the machine changed speed
    (0.50, 1.05, 0.52, "disagree"),      # stable machine, still 2x apart
])
def test_verdict(ratio, drift, rerun_ratio, expected):
    from attnseg.benchmarking.benchmark_app import verdict

    assert verdict(ratio, 0.1, drift, rerun_ratio) == expected


def test_console_says_which_verdict():
    from attnseg.benchmarking.report import format_benchmark_app
    from attnseg.benchmarking.result import BenchmarkAppComparison

    def text(ratio, rerun, verdict):
        ba = BenchmarkAppComparison(["benchmark_app"], 100.0, 100.0, 10.0, 5, 100.0 * ratio, ratio, 0.1,
                                    verdict == "agree", attnseg_rerun_median_ms=rerun, verdict=verdict)
        return "\n".join(format_benchmark_app(ba))

    assert "agree (within 10%)" in text(1.05, None, "agree")
    assert "agree with our rerun (ratio 1.050)" in text(1.5, 105.0, "agree")
    assert "(after benchmark_app)" in text(1.5, 105.0, "agree")
    assert "INCONCLUSIVE" in text(2.0, 300.0, "inconclusive")
    assert "DISAGREE by more than 10%" in text(2.0, 205.0, "disagree")
