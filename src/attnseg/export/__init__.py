"""Export: PyTorch checkpoint -> ONNX -> OpenVINO IR, checked against PyTorch.

``export()`` is the one entry point; importing this package does not import torch, onnx or
openvino (they load when ``export()`` runs).
"""

from attnseg.export.api import AdvancedExportParameters, export
from attnseg.export.options import (
    FP32_MAX_ABS_DIFF,
    FP32_MIN_EQUAL_PIXELS,
    OPSET,
    BackendFigures,
    ExportResult,
    OutputKind,
    ParityReport,
    Precision,
)

__all__ = [
    "FP32_MAX_ABS_DIFF",
    "FP32_MIN_EQUAL_PIXELS",
    "OPSET",
    "AdvancedExportParameters",
    "BackendFigures",
    "ExportResult",
    "OutputKind",
    "ParityReport",
    "Precision",
    "export",
]
