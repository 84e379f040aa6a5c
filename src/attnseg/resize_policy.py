"""How an image of any size is fitted to a model's fixed input, and how to undo it (numpy + OpenCV).

One definition shared by training (``letterbox_pair``), the runtime (``fit`` /
``place_image`` / ``crop_content``) and the tiler, so a model sees at inference exactly the
geometry it was trained with.

Policies:

``stretch``
    Resize to the model size, aspect ratio not kept (attnseg's original behaviour).
``letterbox``
    Scale by one factor so the whole image fits, keep its aspect ratio, centre it, and fill
    the rest with a constant colour. The pad colour is the normalization mean colour
    (``pad_color``), so padded pixels are ~0 after ``(pixel / scale - mean) / std``: the
    network sees the same "nothing here" value its convolutions already pad with, and the
    value is a plain uint8 colour, so it is identical whether the IR normalizes itself
    (embedded preprocessing) or the runtime does. Masks are padded with ``mask_fill``
    (background, or the loss's ignore index). On the way back only the content box is
    resized to the image, so a pad pixel can never become a foreground pixel.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import cv2
import numpy as np

from attnseg.errors import ModelConfigError, parse_enum
from attnseg.imaging import resize_image, resize_mask
from attnseg.metadata import Normalization


class ResizePolicy(str, Enum):
    """How an image is fitted to a fixed model input."""

    STRETCH = "stretch"
    LETTERBOX = "letterbox"

    @classmethod
    def parse(cls, value: str | ResizePolicy) -> ResizePolicy:
        return parse_enum(cls, value, "resize policy")


RESIZE_POLICIES = tuple(p.value for p in ResizePolicy)


@dataclass(frozen=True)
class Placement:
    """Where an image of ``image_size`` sits inside a model input of ``input_size``.

    ``top, left, height, width`` is the content box in input pixels; everything outside it
    is padding (empty for ``stretch``).
    """

    image_size: tuple[int, int]  # (H, W) of the original image
    input_size: tuple[int, int]  # (H, W) of the model input
    top: int
    left: int
    height: int
    width: int

    @property
    def padded(self) -> bool:
        return (self.height, self.width) != tuple(self.input_size)

    def content_mask(self) -> np.ndarray:
        """HxW bool at the input size: True on image content, False on padding."""
        m = np.zeros(self.input_size, dtype=bool)
        m[self.top:self.top + self.height, self.left:self.left + self.width] = True
        return m


def fit(image_size: Sequence[int], input_size: Sequence[int], policy: str | ResizePolicy) -> Placement:
    """The placement ``policy`` gives an image of ``image_size`` in a model input of ``input_size``."""
    h, w = int(image_size[0]), int(image_size[1])
    ih, iw = int(input_size[0]), int(input_size[1])
    if min(h, w, ih, iw) < 1:
        raise ModelConfigError(f"Cannot fit a {h}x{w} image into a {ih}x{iw} input.")
    if ResizePolicy.parse(policy) is ResizePolicy.STRETCH:
        return Placement((h, w), (ih, iw), 0, 0, ih, iw)
    scale = min(ih / h, iw / w)
    ch = min(ih, max(1, round(h * scale)))
    cw = min(iw, max(1, round(w * scale)))
    return Placement((h, w), (ih, iw), (ih - ch) // 2, (iw - cw) // 2, ch, cw)


def pad_color(norm: Normalization, channels: int = 3) -> tuple[int, ...]:
    """The uint8 BGR colour that normalizes to ~0: the normalization mean in pixel units."""
    mean = [float(m) * float(norm.pixel_scale) for m in norm.mean]
    if norm.channel_order == "GRAY" or channels == 1 or len(mean) == 1:
        v = int(np.clip(round(mean[0]), 0, 255))
        return (v, v, v)
    rgb = mean[:3] if len(mean) >= 3 else (mean * 3)[:3]
    ordered = rgb[::-1] if norm.channel_order == "RGB" else rgb  # to BGR, how images are held
    return tuple(int(np.clip(round(v), 0, 255)) for v in ordered)


def place_image(img: np.ndarray, placement: Placement, pad_value: float | Sequence[float] = 0,
                interpolation: str = "image") -> np.ndarray:
    """Resize ``img`` into its content box and pad the rest with ``pad_value``.

    ``interpolation="image"`` (or ``"area"``) resizes like training images (area when shrinking,
    bilinear otherwise); ``"linear"`` is bilinear always; ``"nearest"`` keeps label masks as labels.
    """
    box = (placement.height, placement.width)
    if interpolation == "nearest":
        content = resize_mask(img, box)
    else:
        content = resize_image(img, box, "linear" if interpolation == "linear" else "area")
    if not placement.padded:
        return content
    ih, iw = placement.input_size
    bottom = ih - placement.top - placement.height
    right = iw - placement.left - placement.width
    value = pad_value if np.isscalar(pad_value) else [float(v) for v in pad_value]
    if content.ndim == 3 and np.isscalar(value):
        value = [float(value)] * content.shape[2]
    out = cv2.copyMakeBorder(content, placement.top, bottom, placement.left, right,
                             cv2.BORDER_CONSTANT, value=value)
    if content.ndim == 3 and out.ndim == 2:  # OpenCV drops a trailing single channel
        out = out[:, :, None]
    return out


def letterbox_image(img: np.ndarray, size: Sequence[int],
                    pad_value: float | Sequence[float] = 0) -> tuple[np.ndarray, Placement]:
    """Fit ``img`` (HxW or HxWxC) into ``size`` = (H, W) keeping its aspect ratio."""
    placement = fit(img.shape[:2], size, ResizePolicy.LETTERBOX)
    return place_image(img, placement, pad_value), placement


def letterbox_pair(image: np.ndarray, mask: np.ndarray, size: Sequence[int],
                   pad_value: float | Sequence[float] = 0,
                   mask_fill: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Training: letterbox an image and its label mask the same way.

    The image is resized like every training image, the mask nearest-neighbour; the pad is
    ``pad_value`` in the image (use ``pad_color(normalization)`` to match the runtime) and
    ``mask_fill`` in the mask (0 = background, or an ignore index to leave it out of the loss).
    """
    if image.shape[:2] != mask.shape[:2]:
        raise ModelConfigError(f"image {image.shape[:2]} and mask {mask.shape[:2]} differ in size.")
    placement = fit(image.shape[:2], size, ResizePolicy.LETTERBOX)
    return (place_image(image, placement, pad_value),
            place_image(mask, placement, mask_fill, interpolation="nearest"))


def fit_image(img: np.ndarray, size: Sequence[int], policy: str | ResizePolicy,
              pad_value: float | Sequence[float] = 0) -> tuple[np.ndarray, Placement]:
    """``img`` fitted to ``size`` under ``policy``, and where its content went."""
    placement = fit(img.shape[:2], size, policy)
    return place_image(img, placement, pad_value), placement


def content_box(placement: Placement, map_size: Sequence[int]) -> tuple[slice, slice]:
    """Rows and columns of a map of ``map_size`` (an output at or below the input size) that
    hold image content. A smaller map is scaled, keeping only cells that lie wholly inside the
    content box (no cell half pad, half image), at least one per axis."""

    def axis(start: int, length: int, full: int, size: int) -> slice:
        if size == full:
            return slice(start, start + length)
        lo, hi = start * size / full, (start + length) * size / full
        a, b = math.ceil(lo - 1e-9), math.floor(hi + 1e-9)
        if b <= a:  # content thinner than one cell: the cell holding its centre
            a = min(size - 1, int((lo + hi) / 2))
            b = a + 1
        return slice(a, b)

    ih, iw = placement.input_size
    return (axis(placement.top, placement.height, ih, int(map_size[0])),
            axis(placement.left, placement.width, iw, int(map_size[1])))


def crop_content(maps: np.ndarray, placement: Placement) -> np.ndarray:
    """Drop the padding from ``(..., h, w)`` model-space maps; the image content stays."""
    rows, cols = content_box(placement, maps.shape[-2:])
    return maps[..., rows, cols]


def unplace_map(maps: np.ndarray, placement: Placement, interpolation: str = "linear") -> np.ndarray:
    """Model-space ``(h, w)`` or ``(C, h, w)`` maps -> the image's own size, padding removed.

    ``interpolation`` is ``linear`` for scores and probabilities, ``nearest`` for label masks.
    """
    content = crop_content(maps, placement)
    h, w = placement.image_size
    flag = cv2.INTER_NEAREST if interpolation == "nearest" else cv2.INTER_LINEAR
    if content.ndim == 2:
        if content.shape == (h, w):
            return np.ascontiguousarray(content)
        return cv2.resize(np.ascontiguousarray(content), (w, h), interpolation=flag)
    out = np.empty((content.shape[0], h, w), dtype=content.dtype)
    for c in range(content.shape[0]):
        plane = np.ascontiguousarray(content[c])
        out[c] = plane if plane.shape == (h, w) else cv2.resize(plane, (w, h), interpolation=flag)
    return out


__all__ = [
    "RESIZE_POLICIES", "Placement", "ResizePolicy", "content_box", "crop_content", "fit", "fit_image",
    "letterbox_image", "letterbox_pair", "pad_color", "place_image", "unplace_map",
]
