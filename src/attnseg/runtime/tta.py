"""Test-time augmentation: the model also sees the image mirrored (and, with ``flip4``, upside
down); the passes are averaged in
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

#: (flip rows, flip columns) of every pass of each mode; the first pass is the image itself.
PASSES: dict[TTA, tuple[tuple[bool, bool], ...]] = {
    TTA.NONE: ((False, False),),
    TTA.FLIP: ((False, False), (False, True)),
    TTA.FLIP4: ((False, False), (False, True), (True, False), (True, True)),
}


def passes_of(tta: TTA) -> tuple[tuple[bool, bool], ...]:
    """The (flip rows, flip columns) passes that ``tta`` runs."""
    return PASSES[TTA.parse(tta)]


def _axes(vertical: bool, horizontal: bool, height_axis: int, width_axis: int) -> tuple[int, ...]:
    return tuple(a for a, on in ((height_axis, vertical), (width_axis, horizontal)) if on)


def flipped(tensor: np.ndarray, layout: str, vertical: bool = False, horizontal: bool = True) -> np.ndarray:
    """The input batch flipped (height and width are the last two axes of NCHW, the middle two of NHWC)."""
    nhwc = layout.upper() == "NHWC"
    axes = _axes(vertical, horizontal, -3 if nhwc else -2, -2 if nhwc else -1)
    return np.ascontiguousarray(np.flip(tensor, axis=axes)) if axes else tensor


def unflipped(raw_outputs: Sequence[np.ndarray], vertical: bool = False,
              horizontal: bool = True) -> list[np.ndarray]:
    """Raw outputs of a flipped pass flipped back (every output's height and width are its last two axes)."""
    axes = _axes(vertical, horizontal, -2, -1)
    return [np.ascontiguousarray(np.flip(np.asarray(o), axis=axes)) if axes else np.asarray(o) for o in raw_outputs]


def mirrored(tensor: np.ndarray, layout: str) -> np.ndarray:
    """The input batch mirrored left-right."""
    return flipped(tensor, layout, False, True)


def unmirrored(raw_outputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Raw outputs of a left-right mirrored pass mirrored back."""
    return unflipped(raw_outputs, False, True)


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


__all__ = ["PASSES", "TTA", "flipped", "merge", "mirrored", "passes_of", "unflipped", "unmirrored"]
