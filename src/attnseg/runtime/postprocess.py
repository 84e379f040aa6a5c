"""Raw model outputs -> mask, probabilities and attention maps at the original image size.

Scores (logits or probabilities) are resized bilinearly to the image and only then
thresholded (binary) or arg-maxed (multiclass), so boundaries stay smooth at any image size;
masks produced inside the IR are resized nearest-neighbour. Padding (letterbox borders,
or the bottom/right pad of dynamic models) is cropped away first, so it never reaches the
mask, the probabilities or the class counts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from attnseg.errors import MetadataError, ModelConfigError
from attnseg.metadata import ModelMetadata
from attnseg.resize_policy import crop_content
from attnseg.runtime.ports import Port
from attnseg.runtime.preprocess import Prepared

#: Class names that mean "no object here" (compared case-insensitively).
BACKGROUND_NAMES = ("background", "_background_", "bg")


def background_index(classes: Sequence[str], binary: bool) -> int | None:
    """THE background rule: the mask value of the first class named like background; for a
    binary model without one, 0 (its mask is "not the class" / "the class" whatever the names,
    e.g. ``["normal", "lesion"]``); a multiclass model without one has no background."""
    lowered = [str(n).lower() for n in classes]
    found = next((i for i, n in enumerate(lowered) if n in BACKGROUND_NAMES), None)
    return 0 if found is None and binary else found


@dataclass(frozen=True)
class OutputSpec:
    """How to read the IR's main output."""

    kind: str  # "logits" | "probabilities" | "mask"
    channels: int  # 1 = binary (sigmoid / threshold), >1 = one score per class (softmax / argmax)
    threshold: float  # binary: foreground when probability > threshold
    classes: tuple[str, ...]  # name of each mask value
    background: int | None  # mask value that is background, if any (``background_index``)
    binary_pair: bool = False  # binary scores as two channels: [logit(t), logit] or [1 - q, q]
    binary: bool = False  # a binary model: mask 0/1 (background / the class), decided by ``threshold``


def output_spec(port: Port, meta: ModelMetadata) -> OutputSpec:
    """How to decode the main output ``port``: kind, channels, threshold, class names, background."""
    kind = meta.output  # validated on read: logits | probabilities | mask
    _check_kind(kind, port)
    channels = None
    if kind != "mask" and port.rank == 4 and port.shape[1] is not None:
        channels = int(port.shape[1])
    if channels is None:
        channels = 1 if meta.task == "binary" else max(1, meta.num_classes)
    classes = list(meta.classes)
    binary = meta.task == "binary" or channels == 1
    if binary:
        if channels > 2:
            raise ModelConfigError(f"Binary model with {channels} output channels; expected 1 or 2.")
        names = classes if len(classes) == 2 else ["background", classes[0] if classes else "foreground"]
    else:
        if len(classes) != channels:
            raise MetadataError(f"The metadata lists {len(classes)} classes but the model outputs {channels} "
                                "channels (classes must name every output channel).")
        names = classes
    return OutputSpec(kind=kind, channels=channels, threshold=float(meta.threshold),
                      classes=tuple(names), background=background_index(names, binary),
                      binary_pair=binary and channels == 2 and kind != "mask", binary=binary)


def _check_kind(kind: str, port: Port) -> None:
    """The metadata's ``output`` must fit the port: a mask is integer class ids, logits and
    probabilities are floating-point scores. Reading one as the other gives all-background masks."""
    is_float = port.dtype.kind == "f"
    if (kind == "mask") == is_float:
        rank = "dynamic" if port.rank is None else port.rank
        actual = "floating-point scores (logits or probabilities)" if is_float else "integer class ids (a mask)"
        raise MetadataError(
            f"output: the metadata says {kind!r}, but the model's output is {port.dtype.name} "
            f"of rank {rank}, i.e. {actual}. The metadata does not describe this model; re-export it."
        )


def crop_valid(scores: np.ndarray, prep: Prepared) -> np.ndarray:
    """Drop the padding (letterbox borders, dynamic models' bottom/right pad): keep the rows
    and columns that held the image, scaled when the output is smaller than the input."""
    if tuple(prep.valid_size) == tuple(prep.input_size):
        return scores
    return crop_content(scores, prep.placement)


def resize_scores(scores: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(C, h, w) float -> a new (C, H, W) float32 array, bilinear, one contiguous plane at a time
    (never a view of ``scores``: they may be an inference request's buffers, reused later)."""
    h, w = size
    if scores.shape[-2:] == (h, w):
        return np.array(scores, dtype=np.float32, order="C", copy=True)
    out = np.empty((scores.shape[0], h, w), dtype=np.float32)
    for c in range(scores.shape[0]):
        plane = np.ascontiguousarray(scores[c], dtype=np.float32)
        cv2.resize(plane, (w, h), dst=out[c], interpolation=cv2.INTER_LINEAR)
    return out


def argmax_planes(scores: np.ndarray, dtype: type = np.uint8) -> np.ndarray:
    """argmax over axis 0 of (C, H, W), plane by plane (several times faster than np.argmax
    on the strided axis); ties go to the lower class id, as with np.argmax."""
    best = scores[0].copy()
    idx = np.zeros(best.shape, dtype=dtype)
    for c in range(1, scores.shape[0]):
        better = scores[c] > best
        np.copyto(idx, c, where=better, casting="unsafe")
        np.maximum(best, scores[c], out=best)
    return idx


def _logit(p: float) -> float:
    p = min(max(float(p), 1e-7), 1.0 - 1e-7)
    return math.log(p / (1.0 - p))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-np.clip(x, -80.0, 80.0)))).astype(np.float32)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=0, keepdims=True))
    return (e / e.sum(axis=0, keepdims=True)).astype(np.float32)


def mask_dtype(num_values: int) -> type:
    return np.uint8 if num_values <= 256 else np.uint16


def decode(raw: np.ndarray, prep: Prepared, spec: OutputSpec,
           want_probabilities: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Main output (1, C, h, w) / (1, h, w) -> (mask HxW, probabilities (K, H, W) or None)."""
    size = prep.original_size
    dtype = mask_dtype(len(spec.classes))
    if spec.kind == "mask":
        m = np.asarray(raw).reshape(raw.shape[-2:])
        m = crop_valid(m, prep)
        m = np.rint(m).astype(dtype) if m.dtype.kind == "f" else m.astype(dtype)
        if m.shape != size:
            m = cv2.resize(m, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)
        return m, None
    scores = np.asarray(raw)
    scores = scores.reshape(scores.shape[-3:]) if scores.ndim >= 3 else scores[None]
    if spec.binary_pair and scores.shape[0] == 2 and not want_probabilities:
        # mask only: one plane (channel 1 minus channel 0) is resized instead of two; the
        # difference is positive exactly where channel 1 wins
        margin = crop_valid(scores[1:2] - scores[0:1], prep)
        return (resize_scores(margin, size)[0] > 0.0).astype(dtype), None
    scores = resize_scores(crop_valid(scores, prep), size)
    if scores.shape[0] == 1:
        s = scores[0]
        if spec.kind == "logits":
            mask = (s > _logit(spec.threshold)).astype(dtype)
            fg = _sigmoid(s) if want_probabilities else None
        else:
            mask = (s > spec.threshold).astype(dtype)
            fg = np.clip(s, 0.0, 1.0) if want_probabilities else None
        probs = np.stack([1.0 - fg, fg]) if fg is not None else None
        return mask, probs
    if spec.binary_pair and scores.shape[0] == 2:
        return _decode_pair(scores, spec, dtype, want_probabilities)
    mask = argmax_planes(scores, dtype)
    if not want_probabilities:
        return mask, None
    probs = _softmax(scores) if spec.kind == "logits" else scores
    return mask, probs


def decide(probabilities: np.ndarray, spec: OutputSpec) -> np.ndarray:
    """(K, H, W) class probabilities merged from several passes (blended tiles, averaged flips)
    -> class ids by the model's own rule: binary models foreground where p > threshold (as
    ``decode`` cuts a single pass), others the most probable class (mask models: the most votes)."""
    dtype = mask_dtype(len(spec.classes))
    if spec.binary and spec.kind != "mask":
        return (probabilities[1] > spec.threshold).astype(dtype)
    return argmax_planes(probabilities, dtype)


def one_hot(mask: np.ndarray, num_classes: int) -> np.ndarray:
    """(K, H, W) float32 votes of a class-id mask (K at least 2): merging passes of mask models."""
    out = np.zeros((max(2, num_classes), *mask.shape), dtype=np.float32)
    for c in range(out.shape[0]):
        out[c] = mask == c
    return out


def _decode_pair(scores: np.ndarray, spec: OutputSpec, dtype: type,
                 want_probabilities: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Binary scores exported as a pair (channel 1 beats channel 0 exactly where the logit beats
    logit(threshold)); the probabilities returned are the model's own sigmoid, as for one channel."""
    mask = (scores[1] > scores[0]).astype(dtype)
    if not want_probabilities:
        return mask, None
    if spec.kind == "logits":
        fg = _sigmoid(scores[1])
    else:  # q = sigmoid(logit - logit(t)) -> p = sigmoid(logit(q) + logit(t))
        q = np.clip(scores[1], 1e-7, 1.0 - 1e-7)
        fg = _sigmoid(np.log(q / (1.0 - q)) + _logit(spec.threshold))
    return mask, np.stack([1.0 - fg, fg])


def attention_map(raw: np.ndarray, prep: Prepared) -> np.ndarray:
    """An attention gate output (1, 1, h, w) -> HxW float32 in [0, 1] at the image size."""
    a = np.asarray(raw, dtype=np.float32)
    a = a.reshape(a.shape[-2:])[None]
    a = resize_scores(crop_valid(a, prep), prep.original_size)[0]
    return np.clip(a, 0.0, 1.0, out=a)


def class_stats(mask: np.ndarray, spec: OutputSpec) -> tuple[dict[str, int], float]:
    """Pixels per class name and the fraction of pixels that are not background."""
    counts = _value_counts(mask, len(spec.classes))
    names = list(spec.classes) + [f"class_{i}" for i in range(len(spec.classes), len(counts))]
    per_class = {name: int(c) for name, c in zip(names, counts)}
    total = max(1, mask.size)
    if spec.background is None:
        return per_class, 1.0
    return per_class, float(1.0 - counts[spec.background] / total)


def _value_counts(mask: np.ndarray, minlength: int) -> np.ndarray:
    """``np.bincount(mask.ravel(), minlength)``; a 0/1 mask is counted without bincount's
    int64 copy of every pixel (several times faster at video sizes)."""
    if minlength == 2 and mask.dtype == np.uint8:
        fg = int(np.count_nonzero(mask))
        if fg == 0 or int(mask.max()) == 1:
            return np.array([mask.size - fg, fg], dtype=np.int64)
    return np.bincount(mask.ravel(), minlength=minlength)
