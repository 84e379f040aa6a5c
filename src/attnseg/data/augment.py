"""Training augmentation, each transform applied with probability ``prob`` (seed 000's
``augmentation_prob``): random crop, horizontal / vertical flip, rotation, colour jitter.

Geometry moves image and mask together; the mask is always resampled with nearest neighbour
so labels stay labels, and pixels rotated in from outside get ``fill`` (0 for binary masks,
the ignore index for multiclass, so the loss skips them). Colour jitter touches the image only.
Randomness comes from the ``numpy.random.Generator`` the caller passes in, so a dataset can
make it depend on (seed, epoch, index) and stay reproducible with any number of workers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from attnseg.errors import DataError
from attnseg.imaging import resize_image, resize_mask
from attnseg.metadata import DEFAULT_INTERPOLATION


@dataclass(frozen=True)
class Augmentation:
    """Random transforms for training; ``Augmentation(prob=0)`` is the identity."""

    prob: float = 0.5
    rotate_deg: float = 15.0
    hflip: bool = True
    vflip: bool = True
    crop_scale: tuple[float, float] = (0.7, 1.0)
    color_jitter: float = 0.2

    def __post_init__(self) -> None:
        if not 0.0 <= self.prob <= 1.0:
            raise DataError(f"Augmentation probability must be in [0, 1], got {self.prob}.")
        lo, hi = self.crop_scale
        if not 0.0 < lo <= hi <= 1.0:
            raise DataError(f"crop_scale must satisfy 0 < min <= max <= 1, got {self.crop_scale}.")
        if self.rotate_deg < 0 or not 0.0 <= self.color_jitter < 1.0:
            raise DataError("rotate_deg must be >= 0 and color_jitter in [0, 1).")

    def _do(self, rng: np.random.Generator) -> bool:
        return self.prob > 0 and rng.random() < self.prob

    def __call__(
        self,
        image: np.ndarray,
        mask: np.ndarray,
        rng: np.random.Generator,
        fill: int = 0,
        size: Sequence[int] | None = None,
        interpolation: str = DEFAULT_INTERPOLATION,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Augment an HxWx3 uint8 image and its HxW mask. With ``size`` = (H, W) the crop is cut
        at full resolution and the result resized to ``size`` (with ``interpolation``, the
        dataset's, as the runtime resizes) before the other transforms."""
        if image.shape[:2] != mask.shape[:2]:
            raise DataError(f"Image {image.shape[:2]} and mask {mask.shape[:2]} differ in size.")
        if self.crop_scale[0] < 1.0 and self._do(rng):
            image, mask = self.crop(image, mask, rng)
        if size is not None:
            image, mask = resize_image(image, size, interpolation), resize_mask(mask, size)
        if self.hflip and self._do(rng):
            image, mask = image[:, ::-1], mask[:, ::-1]
        if self.vflip and self._do(rng):
            image, mask = image[::-1], mask[::-1]
        if self.rotate_deg > 0 and self._do(rng):
            angle = float(rng.uniform(-self.rotate_deg, self.rotate_deg))
            image, mask = rotate(image, mask, angle, fill)
        if self.color_jitter > 0 and self._do(rng):
            image = self.jitter(image, rng)
        return np.ascontiguousarray(image), np.ascontiguousarray(mask)

    def crop(
        self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """A random crop whose sides are ``s`` times the image's, s ~ U(crop_scale)."""
        h, w = mask.shape[:2]
        s = float(rng.uniform(*self.crop_scale))
        ch, cw = max(1, round(h * s)), max(1, round(w * s))
        y0 = int(rng.integers(0, h - ch + 1))
        x0 = int(rng.integers(0, w - cw + 1))
        return image[y0 : y0 + ch, x0 : x0 + cw], mask[y0 : y0 + ch, x0 : x0 + cw]

    def jitter(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Brightness, contrast and saturation factors each drawn from U(1 - j, 1 + j)."""
        j = self.color_jitter
        b, c, s = (float(v) for v in rng.uniform(1 - j, 1 + j, size=3))
        x = image.astype(np.float32) * b
        gray = x.mean(axis=2, keepdims=True)
        x = (x - gray.mean()) * c + gray.mean()
        gray = x.mean(axis=2, keepdims=True)
        x = (x - gray) * s + gray
        return np.clip(x + 0.5, 0, 255).astype(np.uint8)


def rotate(image: np.ndarray, mask: np.ndarray, angle: float, fill: int) -> tuple[np.ndarray, np.ndarray]:
    """Rotate about the centre: bilinear image (black border), nearest mask (``fill`` border)."""
    h, w = mask.shape[:2]
    m = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), angle, 1.0)
    img = cv2.warpAffine(
        np.ascontiguousarray(image), m, (w, h), flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0),
    )  # fmt: skip
    msk = cv2.warpAffine(
        np.ascontiguousarray(mask), m, (w, h), flags=cv2.INTER_NEAREST,
        borderMode=cv2.BORDER_CONSTANT, borderValue=int(fill),
    )  # fmt: skip
    return img, msk
