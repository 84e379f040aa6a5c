"""What ``compare_backends`` measured, per backend and overall (stdlib only)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from attnseg.benchmarking.machine import MachineInfo
from attnseg.benchmarking.stats import LatencyStats


@dataclass
class BackendResult:
    """One backend: how it was built, how fast it ran, how accurate it was."""

    name: str
    label: str
    status: str = "ok"  # ok | skipped | failed
    note: str = ""
    weights: str = ""  # precision of the stored weights: fp32 | fp16 | int8 | bf16
    compute: str = ""  # precision the kernels ran in (e.g. OpenVINO's INFERENCE_PRECISION_HINT)
    threads: int | None = None
    prepare_s: float | None = None  # export / quantize / compile time before the first inference
    first_inference_ms: float | None = None
    latency: LatencyStats | None = None
    samples_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)  # process CPU time per inference (all threads)
    speedup: float | None = None  # baseline median / this median
    mask_agreement: float | None = None  # share of mask pixels equal to the baseline's, on the timing input
    max_abs_diff: float | None = None  # vs the baseline's output on the timing input
    accuracy: dict[str, Any] | None = None  # {"metric": "dice"|"miou", "value": float, "count": n}
    model_path: str = ""
    model_size_mb: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.latency is not None

    def to_dict(self, include_samples: bool = True) -> dict[str, Any]:
        d = asdict(self)
        d["latency"] = self.latency.to_dict() if self.latency else None
        d["cpu_median_ms"] = LatencyStats.from_samples(self.cpu_ms).median_ms if self.cpu_ms else None
        if not include_samples:
            d.pop("samples_ms")
            d.pop("cpu_ms")
        return d


@dataclass
class CompareResult:
    """The whole comparison: settings, machine, and one ``BackendResult`` per backend."""

    checkpoint: str
    arch: str
    arch_kwargs: dict[str, Any]
    input_shape: list[int]
    task: str
    rounds: int
    iters_per_round: int
    warmup: int
    baseline: str
    backends: list[BackendResult]
    machine: MachineInfo
    load_average_end: list[float] = field(default_factory=list)
    cpu_share: float | None = None  # process CPU time / (wall time x usable cores) while timing
    data: str | None = None
    accuracy_metric: str | None = None
    accuracy_images: int = 0
    command: str = ""
    output_dir: str = ""
    notes: list[str] = field(default_factory=list)

    def backend(self, name: str) -> BackendResult:
        for b in self.backends:
            if b.name == name:
                return b
        raise KeyError(name)

    def to_dict(self, include_samples: bool = True) -> dict[str, Any]:
        d = asdict(self)
        d["machine"] = self.machine.to_dict()
        d["backends"] = [b.to_dict(include_samples) for b in self.backends]
        return d
