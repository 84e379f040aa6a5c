"""The result of one OpenVINO benchmark run: everything every report is written from."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from attnseg.benchmarking.config import BenchmarkConfig
from attnseg.benchmarking.machine import MachineInfo
from attnseg.benchmarking.stats import LatencyStats


@dataclass
class StageTiming:
    """One stage of the end-to-end pipeline (decode, preprocess, infer, postprocess, total)."""

    name: str
    latency: LatencyStats

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **self.latency.to_dict()}


@dataclass
class EndToEndResult:
    """Per-stage timings on real images, beside the inference-only figure."""

    images_dir: str
    num_images: int
    count: int
    input_size: list[int]
    stages: list[StageTiming]
    throughput_fps: float
    inference_only_median_ms: float
    timing_source: str  # "attnseg.runtime.Segmenter" or "attnseg.imaging + compiled model"

    def stage(self, name: str) -> StageTiming:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stages"] = [s.to_dict() for s in self.stages]
        return d


@dataclass
class BenchmarkAppComparison:
    """Our median beside benchmark_app's for the same model and flags in the same run."""

    command: list[str]
    benchmark_app_median_ms: float
    benchmark_app_avg_ms: float
    benchmark_app_throughput_fps: float
    benchmark_app_count: int
    attnseg_median_ms: float
    ratio: float  # attnseg / benchmark_app
    tolerance: float
    agree: bool
    report_folder: str = ""
    attnseg_rerun_median_ms: float | None = None  # ours again, right after benchmark_app
    verdict: str = ""  # agree | disagree | inconclusive (the machine's speed drifted between runs)

    @property
    def drift(self) -> float | None:
        """Our rerun / our first run: how much the machine's speed changed meanwhile."""
        if self.attnseg_rerun_median_ms is None or self.attnseg_median_ms <= 0:
            return None
        return self.attnseg_rerun_median_ms / self.attnseg_median_ms

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "drift": self.drift}


@dataclass
class BenchmarkResult:
    """One OpenVINO run; latencies in ms, in the order the requests completed."""

    config: BenchmarkConfig
    topology: str
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    count: int
    duration_ms: float
    latency: LatencyStats
    throughput_fps: float
    first_inference_ms: float
    read_model_ms: float
    compile_ms: float
    batch_size: int
    nireq: int
    nstreams: int | None
    inference_precision: str
    execution_devices: list[str]
    device_config: dict[str, str]
    latencies_ms: list[float]
    machine: MachineInfo
    reshape_ms: float | None = None
    peak_rss_mb: float | None = None
    compile_rss_increase_mb: float | None = None
    load_average_end: list[float] = field(default_factory=list)
    cpu_share: float | None = None  # process CPU time / (duration x usable cores) while measuring
    perf_counters: list[list[dict[str, Any]]] = field(default_factory=list)
    end_to_end: EndToEndResult | None = None
    benchmark_app: BenchmarkAppComparison | None = None

    def to_dict(self, include_samples: bool = True) -> dict[str, Any]:
        """JSON-ready dict (numbers unrounded); ``include_samples`` keeps every latency."""
        d = {
            "model": self.config.model_path,
            "config": self.config.to_dict(),
            "topology": self.topology,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "count": self.count,
            "duration_ms": self.duration_ms,
            "latency": self.latency.to_dict(),
            "throughput_fps": self.throughput_fps,
            "first_inference_ms": self.first_inference_ms,
            "read_model_ms": self.read_model_ms,
            "reshape_ms": self.reshape_ms,
            "compile_ms": self.compile_ms,
            "batch_size": self.batch_size,
            "nireq": self.nireq,
            "nstreams": self.nstreams,
            "inference_precision": self.inference_precision,
            "execution_devices": self.execution_devices,
            "device_config": self.device_config,
            "peak_rss_mb": self.peak_rss_mb,
            "compile_rss_increase_mb": self.compile_rss_increase_mb,
            "machine": self.machine.to_dict(),
            "load_average_end": self.load_average_end,
            "cpu_share": self.cpu_share,
            "end_to_end": self.end_to_end.to_dict() if self.end_to_end else None,
            "benchmark_app": self.benchmark_app.to_dict() if self.benchmark_app else None,
        }
        if include_samples:
            d["latencies_ms"] = self.latencies_ms
        if self.perf_counters:
            d["perf_counters"] = self.perf_counters
        return d
