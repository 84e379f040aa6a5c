"""Time an OpenVINO model the way benchmark_app does (openvino + numpy only).

Same steps, same clock: read, reshape, compile with the hint / streams / requests asked
for, one untimed first inference, then ``request.latency`` of every inference (OpenVINO's
own per-request timer) and wall-clock duration for throughput. Inputs are filled once
with random data before the loop ("inference only" mode), as benchmark_app does for
static models.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from attnseg.benchmarking.config import Api, BenchmarkConfig, Hint, ReportType, default_duration_s, parse_shape
from attnseg.benchmarking.machine import load_average, machine_info, peak_rss_mb
from attnseg.benchmarking.result import BenchmarkResult
from attnseg.benchmarking.stats import LatencyStats
from attnseg.errors import BenchmarkError, DeviceError, short_message

log = logging.getLogger(__name__)


def prop_str(value: Any) -> str:
    """An OpenVINO property value as benchmark_app-like plain text (bf16, LATENCY, ['CPU'])."""
    if hasattr(value, "get_type_name"):
        return value.get_type_name()
    if hasattr(value, "name") and not isinstance(value, (str, bytes)):
        return str(value.name)
    if isinstance(value, (list, tuple, set)):
        return ",".join(prop_str(v) for v in value)
    return str(value)


def apply_shape(model: Any, shape: str | None, batch: int | None) -> bool:
    """Reshape for ``-shape`` and ``-b`` (batch = first dimension); True if reshaped."""
    import openvino as ov

    if not shape and not batch:
        return False
    wanted: dict[str, Any] = {}
    spec = parse_shape(shape) if shape else {}
    names = [p.get_any_name() if p.get_names() else p.node.get_friendly_name() for p in model.inputs]
    unknown = [n for n in spec if n and n not in names]
    if unknown:
        raise BenchmarkError(f"-shape names input(s) {', '.join(unknown)}; the model's inputs are {', '.join(names)}.")
    for port, name in zip(model.inputs, names):
        ps = ov.PartialShape(spec[name]) if name in spec else ov.PartialShape(spec[""]) if "" in spec else port.partial_shape
        if batch:
            if ps.rank.is_dynamic or ps.rank.get_length() == 0:
                raise BenchmarkError(f"-b needs a known input rank; input {name} is {ps}. Use -shape.")
            ps = ov.PartialShape([ov.Dimension(int(batch))] + [ps[i] for i in range(1, ps.rank.get_length())])
        wanted[name] = ps
    try:
        model.reshape({name: ps for name, ps in wanted.items()})
    except RuntimeError as exc:
        raise BenchmarkError(f"Cannot reshape the model to {shape or f'batch {batch}'}: {short_message(exc)}") from None
    return True


def _port_info(port: Any) -> dict[str, Any]:
    name = port.get_any_name() if port.get_names() else port.node.get_friendly_name()
    return {"name": name, "shape": str(port.partial_shape), "dtype": port.element_type.get_type_name()}


def _require_static(model: Any, model_path: str) -> None:
    from attnseg.metadata import read_rt_info

    dynamic = [_port_info(p) for p in model.inputs if p.partial_shape.is_dynamic]
    if not dynamic:
        return
    meta = read_rt_info(model)
    example = "[1,3,256,256]"
    if meta and meta.input_size:
        example = f"[1,{meta.input_channels},{meta.input_size[0]},{meta.input_size[1]}]"
    desc = ", ".join(f"{d['name']} {d['shape']}" for d in dynamic)
    raise BenchmarkError(f"{Path(model_path).name} has dynamic input shape(s) {desc}; pass -shape {example}.")


def random_inputs(model_inputs: Any, seed: int = 0) -> list[Any]:
    """Random data for each (static) input: normal floats, small non-negative integers."""
    import numpy as np

    rng = np.random.default_rng(seed)
    data = []
    for port in model_inputs:
        shape = list(port.shape)
        dtype = port.element_type.to_dtype()
        if np.issubdtype(dtype, np.floating):
            arr = rng.standard_normal(shape).astype(dtype)
        elif dtype == np.bool_:
            arr = rng.integers(0, 2, shape).astype(dtype)
        else:
            arr = rng.integers(0, 256 if dtype == np.uint8 else 100, shape).astype(dtype)
        data.append(arr)
    return data


def _fill(request: Any, data: list[Any]) -> None:
    for i, arr in enumerate(data):
        request.get_input_tensor(i).data[:] = arr


def _profiling(requests: list[Any]) -> list[list[dict[str, Any]]]:
    out = []
    for req in requests:
        rows = []
        for pi in req.profiling_info:
            rows.append({
                "name": pi.node_name,
                "status": str(pi.status),
                "node_type": pi.node_type,
                "exec_type": pi.exec_type,
                "real_time_ms": pi.real_time.total_seconds() * 1000.0,
                "cpu_time_ms": pi.cpu_time.total_seconds() * 1000.0,
            })
        out.append(rows)
    return out


def benchmark_properties(cfg: BenchmarkConfig) -> dict[str, Any]:
    """The device properties benchmark_app would set for these flags (``runtime.compile_config``)."""
    from attnseg.runtime.options import compile_config

    return compile_config(
        Hint.parse(cfg.hint) if cfg.hint else Hint.THROUGHPUT,
        num_requests=cfg.nireq or None, num_streams=cfg.nstreams,
        perf_count=ReportType(cfg.report_type) is not ReportType.NO_COUNTERS,
        allow_auto_batching=False if cfg.batch else None,
        config=_explicit_config(cfg),
    )


def _explicit_config(cfg: BenchmarkConfig) -> dict[str, Any] | None:
    """``-load_config``'s section for the device, then ``-infer_precision`` (which wins)."""
    from attnseg.runtime.config_file import read_config_file

    config = dict(read_config_file(cfg.config_file, cfg.device)) if cfg.config_file else {}
    if cfg.infer_precision:
        config["INFERENCE_PRECISION_HINT"] = cfg.infer_precision
    return config or None


def _compiled_properties(compiled: Any) -> dict[str, str]:
    out = {}
    try:
        keys = compiled.get_property("SUPPORTED_PROPERTIES")
    except RuntimeError:
        return out
    for key in keys:
        if key == "SUPPORTED_PROPERTIES":
            continue
        try:
            out[key] = prop_str(compiled.get_property(key))
        except (RuntimeError, TypeError):
            continue
    return out


def _run_sync(request: Any, niter: int | None, duration_s: float | None) -> tuple[list[float], float, int]:
    times: list[float] = []
    it, elapsed = 0, 0.0
    start = time.perf_counter()
    while (niter and it < niter) or (duration_s and elapsed < duration_s):
        request.infer()
        times.append(request.latency)
        it += 1
        elapsed = time.perf_counter() - start
    return times, max(time.perf_counter() - start, 1e-9), it


def _run_async(queue: Any, nireq: int, niter: int | None, duration_s: float | None) -> tuple[list[float], float, int]:
    times: list[float] = []
    in_flight: set[int] = set()
    it, elapsed = 0, 0.0
    start = time.perf_counter()
    while (niter and it < niter) or (duration_s and elapsed < duration_s) or (it % nireq):
        idle = queue.get_idle_request_id()
        if idle in in_flight:
            times.append(queue[idle].latency)
        else:
            in_flight.add(idle)
        queue.start_async()
        it += 1
        elapsed = time.perf_counter() - start
    queue.wait_all()
    total = max(time.perf_counter() - start, 1e-9)
    for idle in in_flight:
        times.append(queue[idle].latency)
    return times, total, it


def benchmark_openvino(
    model_path: str | Path,
    device: str = "CPU",
    hint: str | Hint | None = None,
    api: str | Api | None = None,
    duration_s: float | None = None,
    niter: int | None = None,
    nstreams: int | None = None,
    nireq: int | None = None,
    batch: int | None = None,
    shape: str | None = None,
    infer_precision: str | None = None,
    cache_dir: str | Path | None = None,
    report_type: str | ReportType = ReportType.NO_COUNTERS,
    seed: int = 0,
) -> BenchmarkResult:
    """Benchmark an IR / ONNX model with benchmark_app's flags and rules; see ``BenchmarkConfig``."""
    cfg = BenchmarkConfig(
        model_path=str(model_path), device=device, hint=hint, api=api, duration_s=duration_s, niter=niter,
        nstreams=nstreams, nireq=nireq, batch=batch, shape=shape, infer_precision=infer_precision,
        cache_dir=str(cache_dir) if cache_dir else None, report_type=ReportType(report_type),
    ).resolved()
    return run_benchmark(cfg, seed=seed)


def run_benchmark(cfg: BenchmarkConfig, seed: int = 0) -> BenchmarkResult:
    """Run a resolved ``BenchmarkConfig``."""
    import openvino as ov

    from attnseg.devices import validate_device
    from attnseg.runtime.adapter import read_model
    from attnseg.runtime.options import cache_folder

    machine = machine_info()
    core = ov.Core()
    validate_device(cfg.device, core)
    if cfg.cache_dir:
        core.set_property({"CACHE_DIR": cache_folder(cfg.cache_dir)})

    t0 = time.perf_counter()
    model = read_model(core, cfg.model_path)
    read_ms = (time.perf_counter() - t0) * 1000.0
    topology = model.get_name()
    for port in model.inputs:  # benchmark_app names unnamed inputs after their node
        if not port.get_names():
            port.set_names({port.node.get_friendly_name()})

    t0 = time.perf_counter()
    reshaped = apply_shape(model, cfg.shape, cfg.batch)
    reshape_ms = (time.perf_counter() - t0) * 1000.0 if reshaped else None
    _require_static(model, cfg.model_path)

    props = benchmark_properties(cfg)
    rss_before = peak_rss_mb()
    t0 = time.perf_counter()
    try:
        compiled = core.compile_model(model, cfg.device, props)
    except RuntimeError as exc:
        raise DeviceError(f"{cfg.device} cannot compile {Path(cfg.model_path).name}: {short_message(exc)}") from None
    compile_ms = (time.perf_counter() - t0) * 1000.0
    rss_after = peak_rss_mb()

    device_config = _compiled_properties(compiled)
    first_shape = list(compiled.inputs[0].shape) if compiled.inputs else []
    batch_size = int(first_shape[0]) if first_shape else 1
    data = random_inputs(compiled.inputs, seed)

    niter, duration = cfg.niter, cfg.duration_s
    if not niter and not duration:
        duration = float(default_duration_s(cfg.device))
    if cfg.api is Api.SYNC:
        nireq_used = 1
        request = compiled.create_infer_request()
        _fill(request, data)
        requests = [request]
        log.info("Measuring performance (sync, 1 inference request, limits: %s)", _limits(niter, duration))
        request.infer()
        first_ms = request.latency
        cpu0 = time.process_time()
        times, total_s, count = _run_sync(request, niter, duration)
    else:
        nireq_used = int(cfg.nireq or int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")) or 1)
        queue = ov.AsyncInferQueue(compiled, nireq_used)
        requests = [queue[i] for i in range(nireq_used)]
        for req in requests:
            _fill(req, data)
        if niter:
            aligned = -(-int(niter) // nireq_used) * nireq_used
            if aligned != niter:
                log.warning("Number of iterations was aligned by request number from %s to %s using number "
                            "of requests %s", niter, aligned, nireq_used)
            niter = aligned
        log.info("Measuring performance (async, %d inference requests, limits: %s)", nireq_used, _limits(niter, duration))
        idle = queue.get_idle_request_id()
        queue.start_async()
        queue.wait_all()
        first_ms = queue[idle].latency
        cpu0 = time.process_time()
        times, total_s, count = _run_async(queue, nireq_used, niter, duration)

    cpu_share = (time.process_time() - cpu0) / (total_s * max(machine.usable_cores, 1))
    cfg_used = cfg
    if niter != cfg.niter:
        from dataclasses import replace

        cfg_used = replace(cfg, niter=niter)
    nstreams = device_config.get("NUM_STREAMS")
    return BenchmarkResult(
        config=cfg_used,
        topology=topology,
        inputs=[_port_info(p) for p in compiled.inputs],
        outputs=[_port_info(p) for p in compiled.outputs],
        count=count,
        duration_ms=total_s * 1000.0,
        latency=LatencyStats.from_samples(times),
        throughput_fps=batch_size * count / total_s,
        first_inference_ms=first_ms,
        read_model_ms=read_ms,
        reshape_ms=reshape_ms,
        compile_ms=compile_ms,
        batch_size=batch_size,
        nireq=nireq_used,
        nstreams=int(nstreams) if nstreams and nstreams.lstrip("-").isdigit() else None,
        inference_precision=device_config.get("INFERENCE_PRECISION_HINT", cfg.infer_precision or "unknown"),
        execution_devices=device_config.get("EXECUTION_DEVICES", cfg.device).split(","),
        device_config=device_config,
        latencies_ms=[float(t) for t in times],
        machine=machine,
        peak_rss_mb=peak_rss_mb(),
        compile_rss_increase_mb=round(rss_after - rss_before, 1) if rss_before is not None and rss_after is not None else None,
        load_average_end=load_average(),
        cpu_share=cpu_share,
        perf_counters=_profiling(requests) if props.get("PERF_COUNT") else [],
    )


def _limits(niter: int | None, duration_s: float | None) -> str:
    parts = []
    if niter:
        parts.append(f"{niter} iterations")
    if duration_s:
        parts.append(f"{duration_s * 1000:.0f} ms duration")
    return ", ".join(parts)
