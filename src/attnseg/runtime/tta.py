"""Test-time augmentation: the model also sees the image mirrored; the passes are averaged in
probability space and only then decided by the codec (the exported threshold), never voted.

Mirroring the prepared tensor (not the image) keeps the geometry exact: the mirrored pass's
outputs are mirrored back in model space, so both passes decode through the same ``Prepared``
(letterbox padding and all) and land on the same pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from attnseg.runtime.codec import ModelCodec
from attnseg.runtime.options import TTA
from attnseg.runtime.postprocess import one_hot
from attnseg.runtime.preprocess import Prepared
from attnseg.runtime.result import SegmentationResult, StageTimings


def mirrored(tensor: np.ndarray, layout: str) -> np.ndarray:
    """The input batch mirrored left-right (width is the last axis of NCHW, the third of NHWC)."""
    axis = -2 if layout.upper() == "NHWC" else -1
    return np.ascontiguousarray(np.flip(tensor, axis=axis))


def unmirrored(raw_outputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Raw outputs of a mirrored pass mirrored back (every output's width is its last axis)."""
    return [np.ascontiguousarray(np.flip(np.asarray(o), axis=-1)) for o in raw_outputs]


def merge(codec: ModelCodec, prepared: Prepared, passes: Sequence[Sequence[np.ndarray]],
          return_probabilities: bool = False) -> SegmentationResult:
    """Raw outputs of several passes over ``prepared`` (already mapped back to its geometry)
    -> one result: mean probabilities (mask models: mean one-hot votes) and mean attention
    maps, decided by ``codec.decide``."""
    results = [codec.decode(prepared, raw, return_probabilities=True) for raw in passes]
    n = float(len(results))
    k = len(codec.classes)
    probs = sum((r.probabilities if r.probabilities is not None else one_hot(r.mask, k)) for r in results) / n
    attention = {name: sum(r.attention[name] for r in results) / n for name in results[0].attention}
    soft = codec.output.kind != "mask"
    post_ms = sum(r.timings.postprocess for r in results)
    return codec.result(codec.decide(probs), probs.astype(np.float32) if (return_probabilities and soft) else None,
                        attention, prepared.source, StageTimings(postprocess=post_ms, total=post_ms))


__all__ = ["TTA", "merge", "mirrored", "unmirrored"]
