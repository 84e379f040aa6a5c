"""An independent reading of an IR: plain openvino compile + the metadata contract, no runtime code.

Everything the front ends take from the metadata, the reference takes from it too, written out
here on its own: the resize policy (stretch, or letterbox: one scale, centred, padded with the
normalization mean colour, the padding cropped from the output before resizing back), the
threshold (binary: the network's logit against logit(threshold)) and the classes.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from attnseg.imaging import normalize, resize_image
from attnseg.metadata import ModelMetadata


def _meta(xml: Path) -> ModelMetadata:
    return ModelMetadata.read_json(Path(xml).with_suffix(".json"))


def direct_logits(xml: Path, fed_bgr: np.ndarray, *, precision: str) -> np.ndarray:
    """Main output (C, h, w) of the IR for a BGR image already at the size the model gets.

    ``precision``: the INFERENCE_PRECISION_HINT to compile with; pass the one the Segmenter under
    test reports (``seg.inference_precision``), since its ``auto`` choice is measured per machine."""
    import openvino as ov

    meta = _meta(xml)
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": precision}
    compiled = ov.Core().compile_model(str(xml), "CPU", config)
    x = fed_bgr[None] if meta.preprocessing_embedded else normalize(fed_bgr, meta.normalization)[None]
    return compiled(np.ascontiguousarray(x))[compiled.output("logits")][0]


def fed_image(meta: ModelMetadata, bgr: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The model-sized image and its content box (top, left, height, width) under the metadata's policy."""
    mh, mw = meta.input_size
    h, w = bgr.shape[:2]
    if meta.resize_policy != "letterbox":
        return resize_image(bgr, (mh, mw), meta.input_interpolation), (0, 0, mh, mw)
    scale = min(mh / h, mw / w)
    ch, cw = min(mh, max(1, round(h * scale))), min(mw, max(1, round(w * scale)))
    top, left = (mh - ch) // 2, (mw - cw) // 2
    mean = [float(m) * float(meta.normalization.pixel_scale) for m in meta.normalization.mean]
    bgr_mean = mean[::-1] if meta.normalization.channel_order == "RGB" else mean
    fed = np.empty((mh, mw, 3), np.uint8)
    fed[:] = np.clip(np.round(bgr_mean), 0, 255).astype(np.uint8)
    fed[top:top + ch, left:left + cw] = resize_image(bgr, (ch, cw), meta.input_interpolation)
    return fed, (top, left, ch, cw)


def _scores(xml: Path, bgr: np.ndarray, precision: str) -> tuple[ModelMetadata, np.ndarray]:
    """The network's scores at the image's size (float64): for binary models ONE plane, the
    network's own logit (channel 1 of export's ``[logit(t), logit]`` pair); else one per class."""
    meta = _meta(xml)
    h, w = bgr.shape[:2]
    fed, (top, left, ch, cw) = fed_image(meta, bgr)
    logits = direct_logits(xml, fed, precision=precision)
    if meta.task == "binary":
        logits = logits[-1:]
    content = logits[:, top:top + ch, left:left + cw]  # the outputs here are at the input size
    up = np.stack([cv2.resize(np.ascontiguousarray(c), (w, h), interpolation=cv2.INTER_LINEAR) for c in content])
    return meta, up.astype(np.float64)


def reference_mask(xml: Path, bgr: np.ndarray, *, precision: str) -> np.ndarray:
    """Static models: fit to the model size by the recorded policy, infer, crop the padding,
    resize scores bilinearly, then the exported threshold (binary) or argmax."""
    meta, up = _scores(xml, bgr, precision)
    if meta.task == "binary":
        t = float(meta.threshold)
        # The exported IR holds logit(t) as an f32 constant and resizes in f32: decide there too
        # (a float64 cut flips the rare pixel whose logit lies between the two roundings).
        cut = np.float32(math.log(t / (1.0 - t)))
        return (up[0].astype(np.float32) > cut).astype(np.uint8)
    return up.argmax(axis=0).astype(np.uint8)


def reference_probabilities(xml: Path, bgr: np.ndarray, *, precision: str) -> np.ndarray:
    """Static models: (K, H, W) class probabilities at the image size (binary: [1 - p, p] with p
    the sigmoid of the network's logit), from scores resized bilinearly, then sigmoid / softmax."""
    meta, up = _scores(xml, bgr, precision)
    if meta.task == "binary":
        p = 1.0 / (1.0 + np.exp(-up[0]))
        return np.stack([1.0 - p, p]).astype(np.float32)
    e = np.exp(up - up.max(axis=0, keepdims=True))
    return (e / e.sum(axis=0, keepdims=True)).astype(np.float32)


def reference_threshold(xml: Path) -> float:
    """The probability above which a binary model's pixel is foreground (the exported threshold)."""
    return float(_meta(xml).threshold)
