"""What ``quantize`` measured and wrote: one dataclass per part of the report."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class CalibrationInfo:
    """Which images calibrated the quantizers and how they were fed."""

    source: str  # folder, data set spec or "list"
    found: int  # candidate images (after the split filter)
    used: int  # images fed to NNCF
    skipped: list[str] = field(default_factory=list)  # unreadable files, skipped with a warning
    resized: int = 0  # images whose size differed from the model's (stretch-resized)
    input_size: list[int] = field(default_factory=list)  # [H, W] the model runs at
    model_input: str = ""  # e.g. "u8 NHWC BGR (preprocessing embedded in the IR)"
    split: str | None = None  # "FILE:NAME" when a split file selected the images
    seed: int = 0  # seed of the random subset when more images than subset_size were found


@dataclass
class IgnoredInfo:
    """The ignored scope handed to NNCF and the graph nodes it matched."""

    types: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    gates: bool = False  # the attention gates' Sigmoid + Multiply nodes
    nodes: list[str] = field(default_factory=list)  # every node left in floating point by this scope


@dataclass
class SizeFigures:
    """Bytes on disk of the ``.xml`` + ``.bin`` pair."""

    before_bytes: int
    after_bytes: int

    @property
    def ratio(self) -> float:
        return self.after_bytes / self.before_bytes if self.before_bytes else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": round(self.ratio, 4)}


@dataclass
class AccuracyFigures:
    """The validation metric before and after, on the same images, in the same precision."""

    metric: str  # dice | miou
    data: str  # what was validated on (spec, split, folder)
    count: int  # images
    before: float
    after: float
    inference_precision: str  # precision the evaluation compiled with (f32 = reference numbers)
    max_drop: float | None = None  # the budget, as a fraction (0.005 = 0.5 point)
    met: bool | None = None  # budget met (None when no budget was given)
    accuracy_control: dict[str, Any] | None = None  # NNCF accuracy-control details

    @property
    def drop(self) -> float:
        """Absolute drop, positive when the optimized model is worse."""
        return self.before - self.after

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "drop": self.drop, "drop_points": round(100.0 * self.drop, 4)}


@dataclass
class LatencyStats:
    """Milliseconds per synchronous batch-1 inference of one model."""

    median_ms: float
    mean_ms: float
    min_ms: float
    p90_ms: float
    runs: int
    inference_precision: str  # what the compiled model reports (e.g. bf16, f32)
    label: str = ""


@dataclass
class LatencyFigures:
    """Models timed side by side in one run: runs interleaved, so load changes hit all alike."""

    device: str
    hint: str
    runs: int
    warmup: int
    models: dict[str, LatencyStats] = field(default_factory=dict)
    loadavg: list[float] = field(default_factory=list)  # 1-min load average at start and end
    notes: list[str] = field(default_factory=list)

    def ratio(self, after: str, before: str) -> float | None:
        a, b = self.models.get(after), self.models.get(before)
        if a is None or b is None or b.median_ms <= 0:
            return None
        return a.median_ms / b.median_ms


@dataclass
class OptimizeResult:
    """Everything ``quantize`` wrote and measured (also saved as ``<name>_report.json``)."""

    precision: str  # metadata label of the output: int8 | int8_acq | fp16
    source_xml: Path
    output_xml: Path
    output_bin: Path
    metadata_path: Path
    report_json: Path
    report_md: Path
    settings: dict[str, Any]
    size: SizeFigures
    exported_from: str | None = None  # checkpoint, when it was exported on the way
    calibration: CalibrationInfo | None = None
    ignored: IgnoredInfo | None = None
    accuracy: AccuracyFigures | None = None
    latency: LatencyFigures | None = None
    quantizers: int = 0  # FakeQuantize operations in the output IR
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def budget_met(self) -> bool | None:
        """``False`` when a ``max_drop`` was given and not reached (the best model was kept)."""
        return None if self.accuracy is None else self.accuracy.met

    @property
    def latency_ratio(self) -> float | None:
        """Optimized / FP32 IR median latency, both with the device's default settings."""
        return None if self.latency is None else self.latency.ratio("optimized", "fp32")

    def to_dict(self) -> dict[str, Any]:
        lat = None
        if self.latency is not None:
            lat = asdict(self.latency)
            lat["ratio_vs_fp32"] = self.latency.ratio("optimized", "fp32")
            lat["ratio_vs_fp32_f32"] = self.latency.ratio("optimized", "fp32_f32")
        return {
            "precision": self.precision,
            "source_xml": str(self.source_xml),
            "exported_from": self.exported_from,
            "output": {
                "xml": str(self.output_xml), "bin": str(self.output_bin),
                "metadata": str(self.metadata_path), "report_json": str(self.report_json),
                "report_md": str(self.report_md),
            },
            "settings": dict(self.settings),
            "calibration": asdict(self.calibration) if self.calibration else None,
            "ignored": asdict(self.ignored) if self.ignored else None,
            "size": self.size.to_dict(),
            "accuracy": self.accuracy.to_dict() if self.accuracy else None,
            "budget_met": self.budget_met,
            "latency": lat,
            "quantizers": self.quantizers,
            "timings_s": {k: round(v, 3) for k, v in self.timings.items()},
            "warnings": list(self.warnings),
            "versions": dict(self.versions),
        }
