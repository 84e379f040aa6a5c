"""An independent reading of an IR: plain openvino compile + the metadata contract, no runtime code."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from attnseg.imaging import normalize, resize_image
from attnseg.metadata import ModelMetadata


def direct_logits(xml: Path, fed_bgr: np.ndarray, *, precision: str) -> np.ndarray:
    """Main output (C, h, w) of the IR for a BGR image already at the size the model gets.

    ``precision``: the INFERENCE_PRECISION_HINT to compile with; pass the one the Segmenter under
    test reports (``seg.inference_precision``), since its ``auto`` choice is measured per machine."""
    import openvino as ov

    meta = ModelMetadata.read_json(Path(xml).with_suffix(".json"))
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": precision}
    compiled = ov.Core().compile_model(str(xml), "CPU", config)
    x = fed_bgr[None] if meta.preprocessing_embedded else normalize(fed_bgr, meta.normalization)[None]
    return compiled(np.ascontiguousarray(x))[compiled.output("logits")][0]


def reference_mask(xml: Path, bgr: np.ndarray, *, precision: str) -> np.ndarray:
    """Static models: stretch to the model size, infer, resize logits bilinearly, threshold/argmax."""
    meta = ModelMetadata.read_json(Path(xml).with_suffix(".json"))
    h, w = bgr.shape[:2]
    logits = direct_logits(xml, resize_image(bgr, meta.input_size), precision=precision)
    up = np.stack([cv2.resize(c, (w, h), interpolation=cv2.INTER_LINEAR) for c in logits])
    if up.shape[0] == 1:
        return (up[0] > 0.0).astype(np.uint8)  # threshold 0.5 on sigmoid == logit 0
    return up.argmax(axis=0).astype(np.uint8)


def reference_probabilities(xml: Path, bgr: np.ndarray, *, precision: str) -> np.ndarray:
    """Static models: (K, H, W) class probabilities at the image size (binary: [1 - p, p]),
    from logits resized bilinearly, then sigmoid / softmax."""
    meta = ModelMetadata.read_json(Path(xml).with_suffix(".json"))
    h, w = bgr.shape[:2]
    logits = direct_logits(xml, resize_image(bgr, meta.input_size), precision=precision)
    up = np.stack([cv2.resize(c, (w, h), interpolation=cv2.INTER_LINEAR) for c in logits]).astype(np.float64)
    if up.shape[0] == 1:
        p = 1.0 / (1.0 + np.exp(-up[0]))
        return np.stack([1.0 - p, p]).astype(np.float32)
    e = np.exp(up - up.max(axis=0, keepdims=True))
    return (e / e.sum(axis=0, keepdims=True)).astype(np.float32)
