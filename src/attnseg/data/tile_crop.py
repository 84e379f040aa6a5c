"""Tile-scale crops: the view ``TiledSegmenter`` gives a model of a large image.

The tiler cuts windows of the model's input size from the image at its own resolution, so a
256-pixel model sees a 620-pixel Kvasir frame as about six close-ups in which a polyp fills much
of the window, is cut by the window's edge, or is absent. Whole-frame training never shows
that scale (its zoom-in crops keep at least half the frame's area), and every endoscope
fine-tune lost 1-1.6 Dice points when tiled. ``TileCropAugmentation`` shows it: with chance
``tile_prob`` it cuts such a window, at a uniformly random place as the tiler's grid does (empty
windows included, so the model also learns to leave polyp-free close-ups empty), before the
wrapped augmentation runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from attnseg.errors import DataError
from attnseg.metadata import DEFAULT_INTERPOLATION


@dataclass(frozen=True)
class TileCropAugmentation:
    """``inner`` augmentation, preceded with chance ``tile_prob`` by a window of the model's
    input size times s ~ log-uniform(``scale``), cut at the image's own resolution."""

    inner: Any
    tile_prob: float = 0.25
    scale: tuple[float, float] = (0.8, 1.25)
    #: the dataset must keep images at their own resolution (``CachedSegmentationDataset``)
    native_resolution: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.tile_prob <= 1.0:
            raise DataError(f"Tile-crop probability must be in [0, 1], got {self.tile_prob}.")
        if not 0.0 < self.scale[0] <= self.scale[1]:
            raise DataError(f"Tile-crop scale must satisfy 0 < min <= max, got {self.scale}.")

    @property
    def prob(self) -> float:
        """The wrapped augmentation's strength: 0 switches augmentation off, crops included."""
        return self.inner.prob

    def window(self, shape: Sequence[int], size: Sequence[int], rng: np.random.Generator) -> tuple[int, int, int, int]:
        """(y, x, height, width) of one tile-scale window of an image of ``shape``."""
        h, w = int(shape[0]), int(shape[1])
        lo, hi = self.scale
        s = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
        th, tw = min(h, max(1, round(size[0] * s))), min(w, max(1, round(size[1] * s)))
        y, x = int(rng.integers(0, h - th + 1)), int(rng.integers(0, w - tw + 1))
        return y, x, th, tw

    def __call__(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator, fill: int = 0,
                 size: Sequence[int] | None = None,
                 interpolation: str = DEFAULT_INTERPOLATION) -> tuple[np.ndarray, np.ndarray]:
        """Augment an HxWx3 uint8 image and its HxW mask to ``size`` (default: their own)."""
        if image.shape[:2] != mask.shape[:2]:
            raise DataError(f"Image {image.shape[:2]} and mask {mask.shape[:2]} differ in size.")
        size = tuple(size) if size is not None else image.shape[:2]
        if self.prob > 0 and rng.random() < self.tile_prob:
            y, x, th, tw = self.window(image.shape[:2], size, rng)
            image, mask = image[y:y + th, x:x + tw], mask[y:y + th, x:x + tw]
        return self.inner(image, mask, rng, fill=fill, size=size, interpolation=interpolation)
