"""Augmentation for what endoscopes themselves differ in: the black frame around the picture
(circle, octagon, rounded rectangle, of any size), vignetting, overlay text and graphics, interlaced
video, over- and under-exposure, and lenses with another field of view (barrel distortion).

It runs after ``DomainShiftAugmentation`` (scale, colour, blur, compression), and both draw from the
dataset's ``numpy.random.Generator``, so runs stay reproducible. The mask follows the geometry: a
lens warp warps it too, and the part of a polyp hidden by the black frame becomes background
(nothing can be seen there); overlay text leaves the mask alone (the polyp is still there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from attnseg.data.domain_shift import DomainShiftAugmentation
from attnseg.errors import DataError
from attnseg.metadata import DEFAULT_INTERPOLATION


def endoscope_frame(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A float32 HxW visibility map in [0, 1]: 1 inside the endoscope's field, 0 in its black frame,
    with a soft vignetting falloff towards the edge. The shape is a circle, an octagon or a rounded
    rectangle whose size is drawn so the frame cuts from nothing up to the corners and more."""
    kind = int(rng.integers(0, 3))
    cy, cx = h / 2 + rng.uniform(-0.05, 0.05) * h, w / 2 + rng.uniform(-0.05, 0.05) * w
    mask = np.zeros((h, w), np.uint8)
    if kind == 0:
        f = rng.uniform(0.8, 1.35)  # below sqrt(2) the corners go black, below 1 the edges too
        cv2.ellipse(mask, (int(cx), int(cy)), (int(f * w / 2), int(f * h / 2)), 0, 0, 360, 255, -1)
    elif kind == 1:
        cut = rng.uniform(0.1, 0.3)
        pts = np.array([[cut * w, 0], [(1 - cut) * w, 0], [w, cut * h], [w, (1 - cut) * h],
                        [(1 - cut) * w, h], [cut * w, h], [0, (1 - cut) * h], [0, cut * h]], np.int32)
        cv2.fillPoly(mask, [pts], 255)
    else:
        m = int(rng.uniform(0.0, 0.08) * min(h, w))
        r = int(rng.uniform(0.05, 0.25) * min(h, w))
        cv2.rectangle(mask, (m + r, m), (w - m - r, h - m), 255, -1)
        cv2.rectangle(mask, (m, m + r), (w - m, h - m - r), 255, -1)
        for x, y in ((m + r, m + r), (w - m - r, m + r), (m + r, h - m - r), (w - m - r, h - m - r)):
            cv2.circle(mask, (x, y), r, 255, -1)
    vis = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), sigmaX=max(1.0, 0.01 * min(h, w)))
    strength = rng.uniform(0.0, 0.6)  # vignetting: darker towards the edge of the field
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((yy - cy) / (h / 2)) ** 2 + ((xx - cx) / (w / 2)) ** 2
    return vis * np.clip(1.0 - strength * r2 / 2.0, 0.0, 1.0)


def draw_overlay(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Burn in what endoscopy processors print on the picture: patient and date text, a scale bar,
    a small box or icon, in white, green or yellow, at the edges and corners."""
    out = image.copy()
    h, w = out.shape[:2]
    colours = [(255, 255, 255), (0, 255, 0), (0, 255, 255), (200, 200, 200)]
    for _ in range(int(rng.integers(1, 5))):
        colour = colours[int(rng.integers(0, len(colours)))]
        x, y = int(rng.uniform(0.0, 0.7) * w), int(rng.choice([rng.uniform(0.03, 0.15), rng.uniform(0.85, 0.98)]) * h)
        what = int(rng.integers(0, 3))
        if what == 0:
            text = "".join(chr(int(c)) for c in rng.integers(48, 91, size=int(rng.integers(4, 14))))
            cv2.putText(out, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, rng.uniform(0.2, 0.6) * w / 256,
                        colour, 1, cv2.LINE_AA)
        elif what == 1:
            length = int(rng.uniform(0.1, 0.3) * w)
            cv2.line(out, (x, y), (min(w - 1, x + length), y), colour, max(1, w // 200))
        else:
            s = int(rng.uniform(0.03, 0.1) * min(h, w))
            cv2.rectangle(out, (x, y), (min(w - 1, x + s), min(h - 1, y + s)), colour, -1 if rng.random() < 0.5 else 1)
    return out


def interlace(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Combing from interlaced video with motion: every other line shifted sideways."""
    out = image.copy()
    shift = int(rng.integers(1, max(2, image.shape[1] // 60)))
    out[1::2] = np.roll(image[1::2], shift if rng.random() < 0.5 else -shift, axis=1)
    return out


def expose(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Strong over- or under-exposure, with clipping, as an automatic gain gets it wrong."""
    gain = float(np.exp(rng.uniform(np.log(0.35), np.log(2.2))))
    return np.clip(image.astype(np.float32) * gain, 0, 255).astype(np.uint8)


def colour_response(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Another light source and sensor: a white balance (a gain per channel) and a saturation
    drawn per image, wider than the photometric steps of ``DomainShiftAugmentation``."""
    gains = np.exp(rng.uniform(np.log(0.8), np.log(1.25), size=3)).astype(np.float32)
    img = image.astype(np.float32) * gains
    grey = img.mean(axis=2, keepdims=True)
    img = grey + (img - grey) * np.float32(rng.uniform(0.55, 1.5))
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def lens_warp(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Barrel (wide-angle) or pincushion distortion: another lens's field of view."""
    h, w = mask.shape[:2]
    k = rng.uniform(-0.25, 0.35)  # > 0 barrel
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    nx, ny = (xx - w / 2) / (w / 2), (yy - h / 2) / (h / 2)
    scale = 1 + k * (nx * nx + ny * ny)
    mapx, mapy = nx * scale * (w / 2) + w / 2, ny * scale * (h / 2) + h / 2
    image = cv2.remap(image, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    mask = cv2.remap(mask, mapx, mapy, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return image, mask


@dataclass(frozen=True)
class EndoscopeAugmentation:
    """``DomainShiftAugmentation`` followed by endoscope artefacts, each with its own chance
    (scaled by ``prob``)."""

    prob: float = 0.5
    base: DomainShiftAugmentation = field(default=None)  # type: ignore[assignment]
    frame_prob: float = 0.6
    overlay_prob: float = 0.3
    interlace_prob: float = 0.15
    exposure_prob: float = 0.3
    lens_prob: float = 0.3
    colour_prob: float = 0.0  # white balance and saturation (``colour_response``); "endoscope-colour": 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.prob <= 1.0:
            raise DataError(f"Augmentation probability must be in [0, 1], got {self.prob}.")
        if self.base is None:
            object.__setattr__(self, "base", DomainShiftAugmentation(prob=self.prob))

    def __call__(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator, fill: int = 0,
                 size: Sequence[int] | None = None,
                 interpolation: str = DEFAULT_INTERPOLATION) -> tuple[np.ndarray, np.ndarray]:
        """Augment an HxWx3 uint8 BGR image and its HxW mask to ``size`` (default: their own);
        ``interpolation``: the dataset's (``DomainShiftAugmentation``)."""
        image, mask = self.base(image, mask, rng, fill=fill, size=size, interpolation=interpolation)
        if self.prob <= 0:
            return image, mask
        p = self.prob * 2  # prob 0.5 gives each artefact its nominal chance
        if rng.random() < self.lens_prob * p:
            image, mask = lens_warp(image, mask, rng)
        if self.colour_prob and rng.random() < self.colour_prob * p:
            image = colour_response(image, rng)
        if rng.random() < self.exposure_prob * p:
            image = expose(image, rng)
        if rng.random() < self.frame_prob * p:
            vis = endoscope_frame(*mask.shape[:2], rng)
            image = np.clip(image.astype(np.float32) * vis[..., None] + 0.5, 0, 255).astype(np.uint8)
            mask = np.where(vis < 0.1, fill, mask).astype(mask.dtype)  # nothing visible there
        if rng.random() < self.overlay_prob * p:
            image = draw_overlay(image, rng)
        if rng.random() < self.interlace_prob * p:
            image = interlace(image, rng)
        return np.ascontiguousarray(image), np.ascontiguousarray(mask)
