"""benchmark_openvino on a tiny IR: every field, benchmark_app's run rules, clear errors."""

from __future__ import annotations

import math

import pytest

from attnseg.benchmarking import Api, Hint, benchmark_openvino
from attnseg.errors import BenchmarkError, DeviceError


def _check_every_field(r, count):
    lat = r.latency
    assert r.count == count == lat.count == len(r.latencies_ms)
    assert lat.min_ms <= lat.median_ms <= lat.p90_ms <= lat.p99_ms <= lat.max_ms
    assert lat.min_ms <= lat.avg_ms <= lat.max_ms
    assert min(r.latencies_ms) == lat.min_ms and max(r.latencies_ms) == lat.max_ms
    assert r.throughput_fps == pytest.approx(r.batch_size * r.count / (r.duration_ms / 1000.0))
    for v in (r.duration_ms, r.first_inference_ms, r.read_model_ms, r.compile_ms, r.peak_rss_mb):
        assert v is not None and v > 0 and math.isfinite(v)
    assert r.compile_rss_increase_mb is not None and r.compile_rss_increase_mb >= 0
    assert r.cpu_share is not None and 0 <= r.cpu_share <= 1.05  # CPU time / (wall x cores)
    assert r.inference_precision in ("f32", "bf16", "f16")
    assert r.execution_devices == ["CPU"]
    assert r.device_config["INFERENCE_PRECISION_HINT"] == r.inference_precision
    import openvino as ov

    shown = ov.Core().read_model(str(r.config.model_path)).outputs[0].get_partial_shape().to_string().replace(" ", "").replace(
        "?", "-1")
    assert r.inputs[0]["shape"] == "[1,3,64,64]" and r.outputs[0]["shape"] == shown
    m = r.machine
    assert m.cpu_model and m.logical_cores >= 1 and m.usable_cores >= 1
    assert m.versions["openvino"] != "not installed" and "torch" in m.versions and "nncf" in m.versions
    assert "CPU" in m.openvino_devices and m.load_average and r.load_average_end


def test_sync_latency_run_has_every_field(exported_ir):
    r = benchmark_openvino(exported_ir, hint="latency", niter=3)
    assert (r.config.hint, r.config.api, r.nireq) == (Hint.LATENCY, Api.SYNC, 1)
    assert r.device_config["PERFORMANCE_HINT"] == "LATENCY" and r.nstreams == 1
    _check_every_field(r, 3)
    d = r.to_dict()
    assert d["latency"]["median_ms"] == r.latency.median_ms and len(d["latencies_ms"]) == 3
    assert d["machine"]["cpu_flags"] == r.machine.cpu_flags


def test_async_aligns_iterations_to_requests(bare_ir):
    r = benchmark_openvino(bare_ir, hint="throughput", niter=3, nireq=2)
    assert r.config.api is Api.ASYNC and r.nireq == 2
    assert r.config.niter == 4  # rounded up to a multiple of -nireq, as benchmark_app does
    _check_every_field(r, 4)


def test_streams_and_precision_are_applied(bare_ir):
    r = benchmark_openvino(bare_ir, nstreams=1, nireq=1, niter=2, infer_precision="f32")
    assert r.config.hint is Hint.NONE
    assert r.nstreams == 1 and r.inference_precision == "f32"


def test_batch_and_shape_reshape(bare_ir, dynamic_ir):
    r = benchmark_openvino(bare_ir, hint="latency", niter=2, batch=2)
    assert r.batch_size == 2 and r.inputs[0]["shape"] == "[2,3,64,64]" and r.reshape_ms is not None
    assert r.throughput_fps == pytest.approx(2 * r.count / (r.duration_ms / 1000.0))
    r = benchmark_openvino(dynamic_ir, hint="latency", niter=2, shape="[1,3,32,48]")
    assert r.inputs[0]["shape"] == "[1,3,32,48]" and r.outputs[0]["shape"] == "[1,1,32,48]"


def test_dynamic_model_without_shape_says_what_to_pass(dynamic_ir):
    with pytest.raises(BenchmarkError, match=r"dynamic input shape.*-shape \["):
        benchmark_openvino(dynamic_ir, niter=1)


def test_unknown_input_name_and_device(bare_ir):
    with pytest.raises(BenchmarkError, match="model's inputs are"):
        benchmark_openvino(bare_ir, niter=1, shape="nosuch[1,3,64,64]")
    with pytest.raises(DeviceError, match="Available devices: CPU"):
        benchmark_openvino(bare_ir, niter=1, device="NPU")
    with pytest.raises(DeviceError, match="INFERENCE_PRECISION_HINT"):
        benchmark_openvino(bare_ir, niter=1, infer_precision="int4")


def test_per_layer_counters(bare_ir):
    r = benchmark_openvino(bare_ir, hint="latency", niter=2, report_type="average_counters")
    assert len(r.perf_counters) == 1
    executed = [row for row in r.perf_counters[0] if "EXECUTED" in row["status"]]
    assert executed and any(row["node_type"] == "Convolution" for row in executed)
