"""Augmentation aimed at domain shift: another hospital's endoscopes see polyps at other scales,
aspect ratios, colours, sharpness and compression than Kvasir-SEG's. Built on albumentations
(the ``train`` extra), imported only when this augmentation is used.

The pipeline, each step with its own probability:

- geometry: flips, 90-degree turns, an aspect-ratio change, zoom in (crops) and zoom out (the
  image shrinks inside a black frame, so polyps get small, as in low-resolution frames), small
  rotations and shears; masks are always nearest-interpolated and the frame is background;
- photometric: brightness, contrast, gamma, hue and saturation shifts;
- degradation: Gaussian or motion blur, resolution loss (down- and up-sampling), JPEG at quality
  30-90, and specular highlights (small saturated white blobs, as from the endoscope's light).

Draws come from the ``numpy.random.Generator`` the dataset passes (derived from seed, epoch and
index), so runs are reproducible with any number of DataLoader workers, like ``Augmentation``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from attnseg.errors import DataError
from attnseg.imaging import resize_image, resize_mask
from attnseg.metadata import DEFAULT_INTERPOLATION


@dataclass(frozen=True)
class DomainShiftAugmentation:
    """Strong augmentation for cross-device generalisation; ``prob`` scales every step's chance."""

    prob: float = 0.5
    zoom: tuple[float, float] = (0.5, 1.4)  # < 1 zooms out (smaller polyps), > 1 zooms in
    aspect: tuple[float, float] = (0.7, 1.4)  # width / height change before the model resize
    specular_prob: float = 0.25

    def __post_init__(self) -> None:
        if not 0.0 <= self.prob <= 1.0:
            raise DataError(f"Augmentation probability must be in [0, 1], got {self.prob}.")
        if not 0.0 < self.zoom[0] <= self.zoom[1] or not 0.0 < self.aspect[0] <= self.aspect[1]:
            raise DataError(f"zoom and aspect ranges must be positive (min <= max), got {self.zoom}, {self.aspect}.")

    @lru_cache(maxsize=4)  # noqa: B019 - frozen and hashable; building a Compose costs ~0.2 s
    def _pipeline(self, size: tuple[int, int], fill: int):
        import albumentations as A

        p = self.prob
        h, w = int(size[0]), int(size[1])
        return A.Compose([
            A.HorizontalFlip(p=0.5),
            A.VerticalFlip(p=0.5),
            A.RandomRotate90(p=0.5),
            A.Affine(scale=self.zoom, translate_percent=(-0.1, 0.1), rotate=(-20, 20), shear=(-5, 5),
                     border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=fill, p=min(1.0, 1.6 * p)),
            A.RandomResizedCrop(size=(h, w), scale=(0.5, 1.0), ratio=(0.75, 1.333), p=0.5 * p),
            A.Resize(h, w),
            A.RandomBrightnessContrast(brightness_limit=0.25, contrast_limit=0.25, p=p),
            A.RandomGamma(gamma_limit=(70, 150), p=p),
            A.HueSaturationValue(hue_shift_limit=8, sat_shift_limit=30, val_shift_limit=15, p=p),
            A.OneOf([A.GaussianBlur(blur_limit=(3, 7)), A.MotionBlur(blur_limit=(3, 9))], p=0.6 * p),
            A.Downscale(scale_range=(0.35, 0.8), p=0.5 * p),
            A.ImageCompression(quality_range=(30, 90), p=0.6 * p),
        ])

    def __call__(
        self,
        image: np.ndarray,
        mask: np.ndarray,
        rng: np.random.Generator,
        fill: int = 0,
        size: Sequence[int] | None = None,
        interpolation: str = DEFAULT_INTERPOLATION,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Augment an HxWx3 uint8 BGR image and its HxW mask to ``size`` (default: their own).
        ``interpolation`` (the dataset's) resizes the image where no augmentation is drawn and
        for the aspect change; the albumentations steps resample bilinearly."""
        if image.shape[:2] != mask.shape[:2]:
            raise DataError(f"Image {image.shape[:2]} and mask {mask.shape[:2]} differ in size.")
        size = tuple(size) if size is not None else image.shape[:2]
        if self.prob <= 0:
            return resize_image(image, size, interpolation), resize_mask(mask, size)
        lo, hi = self.aspect
        if rng.random() < self.prob:  # aspect change first: another camera's frame shape
            r = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
            h, w = mask.shape[:2]
            new = (h, max(8, round(w * r)))
            image, mask = resize_image(image, new, interpolation), resize_mask(mask, new)
        pipe = self._pipeline((int(size[0]), int(size[1])), int(fill))
        pipe.set_random_seed(int(rng.integers(0, 2**31 - 1)))
        # albumentations' hue and colour steps expect RGB; our images are BGR.
        out = pipe(image=np.ascontiguousarray(image[..., ::-1]), mask=np.ascontiguousarray(mask))
        image, mask = out["image"][..., ::-1], out["mask"]
        if rng.random() < self.specular_prob * 2 * self.prob:
            image = add_specular_highlights(image, rng)
        return np.ascontiguousarray(image), np.ascontiguousarray(mask)


def add_specular_highlights(image: np.ndarray, rng: np.random.Generator, max_spots: int = 6) -> np.ndarray:
    """Paint a few small, soft-edged, saturated white ellipses: the light reflections endoscopes
    show on wet mucosa, which models otherwise mistake for texture or polyp edges."""
    h, w = image.shape[:2]
    layer = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(1, max_spots + 1))):
        cx, cy = int(rng.integers(0, w)), int(rng.integers(0, h))
        ax = int(rng.integers(1, max(2, w // 30)))
        ay = int(rng.integers(1, max(2, h // 30)))
        cv2.ellipse(layer, (cx, cy), (ax, ay), float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
    layer = cv2.GaussianBlur(layer, (0, 0), sigmaX=1.5)[..., None]
    out = image.astype(np.float32) * (1 - layer) + 255.0 * layer
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
