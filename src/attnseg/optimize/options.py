"""The user's vocabulary for optimization (``str`` enums doubling as CLI choices) and the
defaults chosen by measurement for attention U-Nets.

The defaults below were picked by ``benchmarks/int8_defaults.py`` on an AttU_Net trained on
Kvasir-SEG; ``docs/optimize_defaults.md`` holds the measurements and the command that
reproduces them. Change them only together with that document.
"""

from __future__ import annotations

from enum import Enum


class OptimizePrecision(str, Enum):
    """What ``quantize`` produces: NNCF INT8 (activations and weights) or FP16 weights."""

    INT8 = "int8"
    FP16 = "fp16"


class Preset(str, Enum):
    """NNCF quantization preset: ``performance`` = symmetric activations, ``mixed`` =
    asymmetric activations (better for activations that are not centred on zero)."""

    MIXED = "mixed"
    PERFORMANCE = "performance"


class Metric(str, Enum):
    """Validation metric: Dice (binary models) or mIoU (any model), from ``attnseg.data.metrics``."""

    DICE = "dice"
    MIOU = "miou"


#: Defaults chosen by measurement (docs/optimize_defaults.md).
DEFAULT_PRESET = Preset.MIXED
DEFAULT_FAST_BIAS_CORRECTION = True
DEFAULT_IGNORE_GATES = False
DEFAULT_SUBSET_SIZE = 300
#: Fewer calibration images than this gets a warning (statistics of a few images are noisy).
MIN_RECOMMENDED_CALIBRATION = 100
#: Timed runs per model for the side-by-side latency figure (0 skips it).
DEFAULT_LATENCY_RUNS = 30
LATENCY_WARMUP = 3


def output_precision_label(precision: OptimizePrecision, accuracy_control: bool) -> str:
    """The ``ModelMetadata.precision`` value written into the optimized IR."""
    if precision is OptimizePrecision.FP16:
        return "fp16"
    return "int8_acq" if accuracy_control else "int8"
