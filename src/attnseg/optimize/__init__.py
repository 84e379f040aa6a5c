"""Optimization: NNCF INT8 post-training quantization (plain or accuracy-controlled with the
project's own Dice / mIoU) and FP16 weight compression of exported IRs.

    from attnseg.optimize import AdvancedQuantizationParameters, quantize
    r = quantize("export/model.xml", calibration="kvasir:/data/kvasir-seg",
                 split="splits/kvasir-seg.json", validation="kvasir:/data/kvasir-seg",
                 advanced=AdvancedQuantizationParameters(validation_split="splits/kvasir-seg.json:test"))
    r.output_xml, r.accuracy.drop, r.latency_ratio

Importing this package does not import nncf, torch or openvino (they load when ``quantize`` runs).
"""

from attnseg.optimize.api import AdvancedQuantizationParameters, quantize
from attnseg.optimize.calibration import InputFormat
from attnseg.optimize.options import (
    DEFAULT_FAST_BIAS_CORRECTION,
    DEFAULT_IGNORE_GATES,
    DEFAULT_LATENCY_RUNS,
    DEFAULT_PRESET,
    DEFAULT_SUBSET_SIZE,
    MIN_RECOMMENDED_CALIBRATION,
    Metric,
    OptimizePrecision,
    Preset,
)
from attnseg.optimize.result import (
    AccuracyFigures,
    CalibrationInfo,
    IgnoredInfo,
    LatencyFigures,
    LatencyStats,
    OptimizeResult,
    SizeFigures,
)

__all__ = [
    "DEFAULT_FAST_BIAS_CORRECTION",
    "DEFAULT_IGNORE_GATES",
    "DEFAULT_LATENCY_RUNS",
    "DEFAULT_PRESET",
    "DEFAULT_SUBSET_SIZE",
    "MIN_RECOMMENDED_CALIBRATION",
    "AccuracyFigures",
    "AdvancedQuantizationParameters",
    "CalibrationInfo",
    "IgnoredInfo",
    "InputFormat",
    "LatencyFigures",
    "LatencyStats",
    "Metric",
    "OptimizePrecision",
    "OptimizeResult",
    "Preset",
    "SizeFigures",
    "quantize",
]
