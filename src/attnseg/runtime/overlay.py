"""Draw results for people: class colours blended over the image, contours, attention heatmaps.

OpenCV + numpy only; every function takes and returns HxWx3 uint8 BGR images.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from attnseg.errors import InputFileError
from attnseg.imaging import to_bgr8

#: Distinct, saturated BGR colours for the first classes; more are generated.
_BASE_COLOURS = [
    (0, 0, 0), (0, 220, 0), (0, 0, 230), (230, 80, 0), (0, 220, 230), (230, 0, 200),
    (230, 220, 0), (128, 0, 255), (0, 128, 255), (255, 128, 128), (128, 255, 128),
    (90, 90, 200), (200, 90, 90), (90, 200, 90), (60, 160, 255), (255, 160, 60),
]


def palette(num_classes: int, background: int | None = 0) -> np.ndarray:
    """(num_classes, 3) uint8 BGR colours; ``background`` (if any) is black, the rest distinct."""
    n = max(0, int(num_classes))
    colours = list(_BASE_COLOURS[1:])
    k = 0
    while len(colours) < n:  # the VOC bit-interleaving trick, for any number of classes
        k += 1
        r = g = b = 0
        c = k
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        colours.append((b, g, r))
    out = np.zeros((n, 3), dtype=np.uint8)
    it = iter(colours)
    for i in range(n):
        if i != background:
            out[i] = next(it)
    return out


def colorize(mask: np.ndarray, colours: np.ndarray | None = None) -> np.ndarray:
    """Class-id mask -> HxWx3 BGR picture of it."""
    colours = palette(int(mask.max()) + 1) if colours is None else np.asarray(colours, np.uint8)
    if int(mask.max(initial=0)) >= len(colours):
        colours = np.concatenate([colours, palette(int(mask.max()) + 1)[len(colours):]])
    return colours[mask]


def blend(image: np.ndarray, mask: np.ndarray, colours: np.ndarray | None = None,
          alpha: float = 0.5, background: int | None = 0) -> np.ndarray:
    """Tint every non-background pixel of ``image`` with its class colour (``alpha`` = opacity)."""
    base = to_bgr8(image, source="overlay image")
    _check_sizes(base, mask)
    if colours is None:
        colours = palette(max(2, int(mask.max(initial=0)) + 1), background)
    tinted = cv2.addWeighted(base, 1.0 - alpha, colorize(mask, colours), alpha, 0.0)
    if background is None:
        return tinted
    out = base.copy()
    sel = mask != background
    out[sel] = tinted[sel]
    return out


def draw_contours(image: np.ndarray, mask: np.ndarray, colours: np.ndarray | None = None,
                  thickness: int = 2, background: int | None = 0) -> np.ndarray:
    """Outline each class region in its colour (in place on a copy)."""
    out = to_bgr8(image, source="overlay image").copy()
    _check_sizes(out, mask)
    if colours is None:
        colours = palette(max(2, int(mask.max(initial=0)) + 1), background)
    for cls in np.unique(mask):
        if background is not None and cls == background:
            continue
        binary = (mask == cls).astype(np.uint8)
        contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        colour = tuple(int(v) for v in colours[int(cls)]) if int(cls) < len(colours) else (255, 255, 255)
        cv2.drawContours(out, contours, -1, colour, thickness, lineType=cv2.LINE_AA)
    return out


def overlay(image: np.ndarray, mask: np.ndarray, num_classes: int | None = None, alpha: float = 0.45,
            contours: bool = True, background: int | None = 0, thickness: int = 2) -> np.ndarray:
    """The usual picture: colours blended over the image plus class outlines."""
    n = max(2, num_classes or 0, int(mask.max(initial=0)) + 1)
    colours = palette(n, background)
    out = blend(image, mask, colours, alpha, background)
    if contours:
        out = draw_contours(out, mask, colours, thickness, background)
    return out


def heatmap(attention: np.ndarray, image: np.ndarray | None = None, alpha: float = 0.5,
            colormap: int = cv2.COLORMAP_JET) -> np.ndarray:
    """An HxW map in [0, 1] -> colour heatmap, blended over ``image`` when given."""
    a = np.asarray(attention, dtype=np.float32)
    if a.ndim != 2:
        raise InputFileError(f"attention map must be HxW, got shape {a.shape}")
    heat = cv2.applyColorMap((np.clip(a, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8), colormap)
    if image is None:
        return heat
    base = to_bgr8(image, source="heatmap image")
    _check_sizes(base, a)
    return cv2.addWeighted(base, 1.0 - alpha, heat, alpha, 0.0)


def mask_to_png(mask: np.ndarray, binary: bool) -> np.ndarray:
    """What seg-infer writes: binary masks as 0/255 (viewable, like Kvasir), class ids otherwise."""
    if binary:
        return (mask > 0).astype(np.uint8) * 255
    return mask


def _check_sizes(image: np.ndarray, mask: np.ndarray) -> None:
    if image.shape[:2] != mask.shape[:2]:
        raise InputFileError(f"image {image.shape[:2]} and mask {mask.shape[:2]} sizes differ")


__all__: Sequence[str] = ["blend", "colorize", "draw_contours", "heatmap", "mask_to_png", "overlay", "palette"]
