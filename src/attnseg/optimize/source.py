"""The model to optimize: an exported IR (or a checkpoint to export first) and the checks that
must pass before minutes of calibration (not already INT8, an image model). Reading the IR and
its metadata is the runtime's job (``attnseg.runtime.adapter.OpenVINOAdapter``)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from attnseg.errors import InputFileError, OptimizationError
from attnseg.metadata import ModelMetadata

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin_pt")
_QUANTIZED_WEIGHT_TYPES = ("i8", "u8", "i4", "u4", "nf4", "f8e4m3", "f8e5m2")


def input_kind(path: str | Path) -> str:
    """``"ir"`` or ``"checkpoint"`` for an existing path; a clear error otherwise."""
    p = Path(path).expanduser()
    if not p.exists():
        raise InputFileError(f"Model {p} does not exist (give an exported model.xml or a .pt checkpoint).")
    if p.is_dir() or p.suffix.lower() == ".xml":
        return "ir"
    if p.suffix.lower() == ".onnx":
        raise InputFileError(f"{p} is an ONNX file; quantize its OpenVINO IR (seg-export writes model.xml beside it).")
    if p.suffix.lower() in CHECKPOINT_SUFFIXES:
        return "checkpoint"
    raise InputFileError(f"{p} is neither an OpenVINO IR (.xml) nor a PyTorch checkpoint ({', '.join(CHECKPOINT_SUFFIXES)}).")


def op_types(model: Any) -> Counter:
    return Counter(op.get_type_name() for op in model.get_ordered_ops())


def quantized_weight_constants(model: Any) -> int:
    """Constants stored in an 8-bit (or smaller) type: weights already compressed by NNCF."""
    n = 0
    for op in model.get_ordered_ops():
        if op.get_type_name() == "Constant" and op.get_element_type().get_type_name() in _QUANTIZED_WEIGHT_TYPES:
            n += 1
    return n


def fp16_weight_constants(model: Any) -> int:
    return sum(1 for op in model.get_ordered_ops()
               if op.get_type_name() == "Constant" and op.get_element_type().get_type_name() == "f16")


def check_not_quantized(model: Any, meta: ModelMetadata, xml: Path) -> None:
    """Refuse an IR that is already INT8: by its metadata, its FakeQuantize ops or 8-bit weights."""
    fq = op_types(model).get("FakeQuantize", 0)
    packed = quantized_weight_constants(model)
    if meta.precision in ("int8", "int8_acq") or fq or packed:
        why = (f"its metadata says precision {meta.precision!r}" if meta.precision in ("int8", "int8_acq")
               else f"it has {fq} FakeQuantize operations" if fq else f"{packed} of its weights are 8-bit")
        raise OptimizationError(
            f"{xml} is already quantized ({why}). Quantize the FP32 IR instead (the model.xml that seg-export "
            "wrote); quantizing twice compounds the rounding error."
        )


def check_image_model(meta: ModelMetadata, xml: Path) -> None:
    if meta.task not in ("binary", "multiclass"):
        raise OptimizationError(
            f"{xml.name} is a {meta.task} model ({meta.arch}); seg-optimize calibrates image segmentation models "
            "(binary or multiclass) from images."
        )
