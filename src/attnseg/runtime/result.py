"""What one prediction returns: the mask at the original image size and how long each stage took."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class StageTimings:
    """Wall-clock milliseconds per stage of one prediction.

    ``infer`` is the time spent waiting for the device (for ``stream`` it runs from submission
    to completion, so it includes queueing behind other requests); ``total`` covers everything
    from receiving the image to returning the result.
    """

    preprocess: float = 0.0
    infer: float = 0.0
    postprocess: float = 0.0
    total: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {
            "preprocess_ms": round(self.preprocess, 3),
            "infer_ms": round(self.infer, 3),
            "postprocess_ms": round(self.postprocess, 3),
            "total_ms": round(self.total, 3),
        }


@dataclass
class SegmentationResult:
    """One segmented image, everything at the size of the image that was given.

    ``mask[y, x]`` is a class id indexing ``classes`` (binary models: 0 = background,
    1 = foreground). ``probabilities`` is (len(classes), H, W) float32 when asked for and the
    model outputs logits or probabilities. ``attention`` maps each attention gate name (e.g.
    ``Att5``) to an HxW float32 map in [0, 1].
    """

    mask: np.ndarray
    classes: list[str]
    class_pixel_counts: dict[str, int]
    foreground_fraction: float
    probabilities: np.ndarray | None = None
    attention: dict[str, np.ndarray] = field(default_factory=dict)
    timings: StageTimings = field(default_factory=StageTimings)
    source: str | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the mask, the same as the input image."""
        return int(self.mask.shape[0]), int(self.mask.shape[1])

    def summary(self) -> dict[str, Any]:
        """JSON-friendly description (no arrays): what ``seg-infer --json`` prints per image."""
        return {
            "source": self.source,
            "height": self.size[0],
            "width": self.size[1],
            "foreground_fraction": round(float(self.foreground_fraction), 6),
            "class_pixel_counts": dict(self.class_pixel_counts),
            "attention_maps": sorted(self.attention),
            "timings": self.timings.as_dict(),
        }
