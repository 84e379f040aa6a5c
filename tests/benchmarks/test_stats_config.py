"""Latency statistics and option resolution follow benchmark_app's rules."""

from __future__ import annotations

import random

import pytest

from attnseg.benchmarking import Api, BenchmarkConfig, Hint, LatencyStats, parse_shape, percentile
from attnseg.errors import InputFileError, InvalidOptionError


def test_percentile_is_benchmark_apps_nearest_rank():
    from openvino.tools.benchmark.benchmark import percentile as ba_percentile

    rng = random.Random(0)
    for n in (1, 2, 3, 4, 10, 11, 99, 100, 101):
        values = sorted(rng.uniform(0.1, 50) for _ in range(n))
        for p in (1, 50, 90, 99, 100):
            assert percentile(values, p) == ba_percentile(values, p)


def test_latency_stats_fields():
    s = LatencyStats.from_samples([4.0, 1.0, 3.0, 2.0])
    assert (s.count, s.min_ms, s.max_ms, s.avg_ms) == (4, 1.0, 4.0, 2.5)
    assert s.median_ms == 2.0  # lower middle, as benchmark_app
    assert s.p90_ms == 4.0 and s.p99_ms == 4.0
    assert s.std_ms == pytest.approx(1.118, abs=1e-3)
    with pytest.raises(ValueError):
        LatencyStats.from_samples([])


def test_defaults_resolve_like_benchmark_app(bare_ir):
    cfg = BenchmarkConfig(bare_ir).resolved()
    assert (cfg.hint, cfg.api) == (Hint.THROUGHPUT, Api.ASYNC)
    cfg = BenchmarkConfig(bare_ir, hint="latency").resolved()
    assert cfg.api is Api.SYNC
    cfg = BenchmarkConfig(bare_ir, api="sync").resolved()
    assert cfg.hint is Hint.LATENCY
    cfg = BenchmarkConfig(bare_ir, hint="tput").resolved()
    assert cfg.hint is Hint.THROUGHPUT
    cfg = BenchmarkConfig(bare_ir, nstreams=2).resolved()
    assert cfg.hint is Hint.NONE and cfg.api is Api.ASYNC
    assert cfg.limit_description == "60 s"


@pytest.mark.parametrize("kwargs, words", [
    ({"hint": "fast"}, "-hint"),
    ({"api": "parallel"}, "-api"),
    ({"hint": "latency", "nstreams": 2}, "-hint none"),
    ({"niter": 0}, "-niter"),
    ({"duration_s": -1}, "-t"),
    ({"api": "sync", "nireq": 4}, "-nireq"),
    ({"batch": 0}, "-b"),
    ({"shape": "[1,3,x,64]"}, "-shape"),
])
def test_bad_options_are_clear_errors(bare_ir, kwargs, words):
    with pytest.raises(InvalidOptionError, match=words):
        BenchmarkConfig(bare_ir, **kwargs).resolved()


def test_missing_model_files(tmp_path, bare_ir):
    with pytest.raises(InputFileError, match="does not exist"):
        BenchmarkConfig(tmp_path / "nope.xml").resolved()
    xml = tmp_path / "lonely.xml"
    xml.write_text(bare_ir.read_text())
    with pytest.raises(InputFileError, match="lonely.bin"):
        BenchmarkConfig(xml).resolved()
    with pytest.raises(InputFileError, match="not an OpenVINO IR"):
        BenchmarkConfig(bare_ir.with_suffix(".bin")).resolved()


def test_parse_shape():
    assert parse_shape("[1,3,256,256]") == {"": "[1,3,256,256]"}
    assert parse_shape("1,3,64,64") == {"": "[1,3,64,64]"}
    assert parse_shape("image[1,3,?,64..128],aux[1,4]") == {"image": "[1,3,?,64..128]", "aux": "[1,4]"}
    for bad in ("", "[1,3", "image[1,3]junk", "[a,b]"):
        with pytest.raises(InvalidOptionError):
            parse_shape(bad)


def test_benchmark_app_args_round_trip(bare_ir):
    cfg = BenchmarkConfig(bare_ir, hint="none", nstreams=2, nireq=2, niter=8, infer_precision="f32").resolved()
    args = dict(cfg.benchmark_app_args("rep", json_stats=True))
    assert args["-m"] == str(bare_ir) and args["-d"] == "CPU"
    assert (args["-hint"], args["-api"], args["-niter"], args["-nstreams"], args["-nireq"]) == (
        "none", "async", "8", "2", "2")
    assert args["-infer_precision"] == "f32" and args["-report_folder"] == "rep" and args["-json_stats"] == ""
