"""The user's vocabulary for export (``str`` enums doubling as CLI choices) and its results."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from attnseg.metadata import ModelMetadata

#: ONNX opset written by the exporter (OpenVINO, ONNX Runtime and most runtimes read it).
OPSET = 18
#: What parity must reach for FP32 exports, or the export fails.
FP32_MAX_ABS_DIFF = 1e-3
FP32_MIN_EQUAL_PIXELS = 0.999


class Precision(str, Enum):
    """Weight precision of the saved IR (INT8 lives in ``attnseg.optimize``)."""

    FP32 = "fp32"
    FP16 = "fp16"


class Route(str, Enum):
    """How the IR is made: OpenVINO's PyTorch frontend on the module, or via the ONNX file.

    ``model.onnx`` is written either way (for ONNX Runtime users). The default was picked by
    measurement (``benchmarks/conversion_routes.py``, ``docs/conversion_routes.md``).
    """

    TORCH = "torch"
    ONNX = "onnx"


class OutputKind(str, Enum):
    """What the IR's main output holds."""

    LOGITS = "logits"
    PROBABILITIES = "probabilities"
    MASK = "mask"


@dataclass
class BackendFigures:
    """One backend's output compared with PyTorch's on the same inputs."""

    backend: str  # "onnxruntime" | "openvino"
    execution: str  # precision the backend computed in: "f32", or the device default e.g. "bf16"
    compared: str  # what max_abs_diff was measured on (always the raw logits)
    max_abs_diff: float
    mean_abs_diff: float
    equal_pixels: float  # share of mask pixels equal to PyTorch's mask, 0..1
    dice: float  # Dice between this backend's masks and PyTorch's
    attention_max_abs_diff: float | None = None
    enforced: bool = False  # these figures had to meet the FP32 thresholds


@dataclass
class ParityReport:
    """PyTorch vs ONNX Runtime vs OpenVINO on ``num_inputs`` inputs (real images or random)."""

    inputs: str  # "images:<folder>" | "random"
    num_inputs: int
    input_shape: list[int]
    device: str
    precision: str
    backends: list[BackendFigures] = field(default_factory=list)
    passed: bool = True
    enforced: bool = True  # FP32 thresholds enforced; FP16 figures only reported
    thresholds: dict[str, float] = field(
        default_factory=lambda: {"max_abs_diff": FP32_MAX_ABS_DIFF, "equal_pixels": FP32_MIN_EQUAL_PIXELS}
    )

    notes: list[str] = field(default_factory=list)

    def figures(self, backend: str, execution: str | None = None) -> BackendFigures:
        for b in self.backends:
            if b.backend == backend and (execution is None or b.execution == execution):
                return b
        raise KeyError(backend)

    def summary(self) -> str:
        parts = [
            f"{b.backend}[{b.execution}]: max|diff| {b.max_abs_diff:.2e} ({b.compared}), "
            f"equal pixels {100 * b.equal_pixels:.3f}%, Dice {b.dice:.4f}"
            for b in self.backends
        ]
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ExportResult:
    """Where everything went and what the checks measured."""

    output_dir: Path
    onnx_path: Path
    xml_path: Path
    bin_path: Path
    metadata_path: Path
    report_path: Path
    metadata: ModelMetadata
    parity: ParityReport | None
    timings: dict[str, float]
    device: str
    exporter: str
    ovms_model_dir: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "output_dir": str(self.output_dir),
            "onnx": str(self.onnx_path),
            "xml": str(self.xml_path),
            "bin": str(self.bin_path),
            "metadata": str(self.metadata_path),
            "report": str(self.report_path),
            "ovms_model_dir": str(self.ovms_model_dir) if self.ovms_model_dir else None,
            "device": self.device,
            "exporter": self.exporter,
            "timings_s": self.timings,
            "parity": self.parity.to_dict() if self.parity else None,
            "model": self.metadata.to_dict(),
        }
