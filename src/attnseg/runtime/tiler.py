"""Sliding-window inference for images much larger than the model input, with smooth blending.

``TiledSegmenter`` is an adapter over a ``Segmenter``, not a second inference stack: it cuts
overlapping tiles of the model's input size, runs them through ``Segmenter.stream`` (several
requests in flight), and blends each tile's class probabilities, already at tile size from the
Segmenter's codec, with a window that fades towards the tile edges; the blended probabilities
are then decided by the same codec (the model's own threshold), never by a rule of the tiler's. Weights are
normalized per pixel, so a pixel seen by one tile gets exactly that tile's value and seams
between tiles vanish. The idea follows OpenVINO Model API's tilers and OTX (there, overlapping
soft predictions are averaged); attnseg adds the fading window and spreads tiles evenly so edge
tiles keep the full tile size instead of being cut short.

A small lesion keeps its pixels: a 2000-pixel-wide image run through a 256 x 256 model loses
7/8 of its resolution when stretched, none when tiled.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

from attnseg.errors import InvalidOptionError, ModelConfigError, parse_enum
from attnseg.runtime.codec import ModelCodec
from attnseg.runtime.postprocess import one_hot
from attnseg.runtime.preprocess import ImageLike, load_image
from attnseg.runtime.result import SegmentationResult, StageTimings

#: Standard deviation of the Gaussian window as a share of the tile side (as nnU-Net and MONAI).
GAUSSIAN_SIGMA = 0.125
_MIN_WEIGHT = 1e-6  # every pixel of a tile counts a little, so weights never sum to zero
#: Each pixel is computed about 1 / (1 - overlap)^2 times: 100x at 0.9, 10,000x at 0.99 (hours on a
#: large image for no better mask), so overlaps above this are refused.
MAX_OVERLAP = 0.9


class Blend(str, Enum):
    """How overlapping tiles are weighted: a Gaussian bump, a linear tent, or a plain mean."""

    GAUSSIAN = "gaussian"
    LINEAR = "linear"
    MEAN = "mean"

    @classmethod
    def parse(cls, value: str | Blend) -> Blend:
        return parse_enum(cls, value, "tile blend")


@dataclass(frozen=True)
class TileOptions:
    """How to tile. ``tile_size`` (H, W) defaults to the model input (required for models with
    dynamic height/width); ``overlap`` is the share of a tile its neighbour also covers, at
    least (tiles are spread evenly, so the real overlap can be larger), at most ``MAX_OVERLAP``;
    ``max_in_flight`` is the number of tiles in flight at once (default: as ``Segmenter.stream``, twice its optimal
    number of requests)."""

    tile_size: tuple[int, int] | int | None = None
    overlap: float = 0.25
    blend: Blend | str = Blend.GAUSSIAN
    max_in_flight: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.overlap) < 1.0:
            raise InvalidOptionError(f"Tile overlap must be in [0, 1), got {self.overlap}.")
        if float(self.overlap) > MAX_OVERLAP:
            work = 1.0 / (1.0 - float(self.overlap)) ** 2
            raise InvalidOptionError(
                f"Tile overlap {self.overlap} computes every pixel about {work:,.0f} times; attnseg refuses more "
                f"than {MAX_OVERLAP} ({1.0 / (1.0 - MAX_OVERLAP) ** 2:.0f} times). 0.25-0.5 is usual.")
        object.__setattr__(self, "blend", Blend.parse(self.blend))
        if self.tile_size is not None:
            size = self.tile_size
            h, w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
            if h < 1 or w < 1:
                raise InvalidOptionError(f"Tile size must be positive, got {self.tile_size}.")
            object.__setattr__(self, "tile_size", (h, w))
        if self.max_in_flight is not None and int(self.max_in_flight) < 1:
            raise InvalidOptionError(f"max_in_flight must be >= 1, got {self.max_in_flight}.")


@dataclass(frozen=True)
class Tile:
    """One window of the image: top-left corner and size, in image pixels."""

    y: int
    x: int
    h: int
    w: int

    @property
    def region(self) -> tuple[slice, slice]:
        return slice(self.y, self.y + self.h), slice(self.x, self.x + self.w)


def tile_starts(length: int, tile: int, overlap: float) -> list[int]:
    """Start offsets of windows of ``tile`` covering ``length``: evenly spread, first at 0,
    last ending at ``length``, neighbours sharing at least ``overlap`` of a tile."""
    if length <= tile:
        return [0]
    stride = max(1, math.floor(tile * (1.0 - overlap)))
    n = math.ceil((length - tile) / stride) + 1
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]


def tile_grid(image_size: tuple[int, int], tile_size: tuple[int, int], overlap: float) -> list[Tile]:
    """Row-major tiles covering an image of ``image_size``; a tile is cut to the image where
    the image is smaller than the tile."""
    h, w = image_size
    th, tw = min(tile_size[0], h), min(tile_size[1], w)
    return [Tile(y, x, th, tw) for y in tile_starts(h, tile_size[0], overlap)
            for x in tile_starts(w, tile_size[1], overlap)]


def blend_window(size: tuple[int, int], blend: Blend | str) -> np.ndarray:
    """HxW float32 weights of one tile: highest in the middle, fading (but never 0) at the edges."""
    blend = Blend.parse(blend)
    if blend is Blend.MEAN:
        return np.ones(size, dtype=np.float32)

    def axis(n: int) -> np.ndarray:
        t = (np.arange(n, dtype=np.float64) + 0.5) / n - 0.5  # pixel centres, -0.5 .. 0.5 across the tile
        if blend is Blend.GAUSSIAN:  # shifted so it reaches 0 at the tile's boundary: no step there
            edge = math.exp(-0.5 * (0.5 / GAUSSIAN_SIGMA) ** 2)
            return np.exp(-0.5 * (t / GAUSSIAN_SIGMA) ** 2) - edge
        return 1.0 - 2.0 * np.abs(t)  # linear tent, 0 at the tile's boundary, 1/n at its outer pixels

    win = np.outer(axis(size[0]), axis(size[1]))
    return np.maximum(win / win.max(), _MIN_WEIGHT).astype(np.float32)


class TiledSegmenter:
    """Segment large images tile by tile with a ``Segmenter``; results as from ``predict``.

        tiled = TiledSegmenter(Segmenter("model.xml", hint="throughput"), TileOptions(overlap=0.25))
        result = tiled.predict("slide.png")   # SegmentationResult at the image's own size
    """

    def __init__(self, segmenter: Any, options: TileOptions | None = None) -> None:
        self._seg = segmenter
        self._opts = options or TileOptions()
        size = self._opts.tile_size or segmenter.input_size
        if size is None:
            raise ModelConfigError(
                f"{segmenter.model_path.name} takes any height and width; give the tile size "
                "(TileOptions(tile_size=(H, W)), seg-infer --tile-size H W)."
            )
        self._tile = (int(size[0]), int(size[1]))
        self._codec: ModelCodec = segmenter.codec
        self._windows: dict[tuple[int, int], np.ndarray] = {}

    @property
    def segmenter(self) -> Any:
        return self._seg

    @property
    def options(self) -> TileOptions:
        return self._opts

    @property
    def tile_size(self) -> tuple[int, int]:
        return self._tile

    @property
    def classes(self) -> list[str]:
        return self._seg.classes

    @property
    def codec(self) -> ModelCodec:
        """The Segmenter's codec: prepares every tile and decides the blended probabilities."""
        return self._codec

    def grid(self, image_size: tuple[int, int]) -> list[Tile]:
        """The tiles an image of ``image_size`` is cut into."""
        return tile_grid(image_size, self._tile, float(self._opts.overlap))

    def __call__(self, image: ImageLike, return_probabilities: bool = False) -> SegmentationResult:
        return self.predict(image, return_probabilities)

    def stream(self, images: Iterable[Any], return_probabilities: bool = False) -> Iterator[SegmentationResult]:
        """``predict`` for each image (paths, arrays or ``(name, image)`` pairs), in order; the
        tiles of each image run in parallel."""
        for item in images:
            name = None
            if isinstance(item, tuple) and len(item) == 2 and not isinstance(item[0], np.ndarray):
                name, item = item
            result = self.predict(item, return_probabilities)
            if name is not None:
                result.source = str(name)
            yield result

    def predict(self, image: ImageLike, return_probabilities: bool = False) -> SegmentationResult:
        """Segment one image of any size by tiles; same result type and meaning as ``predict``."""
        t0 = time.perf_counter()
        bgr, source = load_image(image)
        h, w = bgr.shape[:2]
        tiles = self.grid((h, w))
        weights = [self._window((t.h, t.w)) for t in tiles]
        total = np.zeros((h, w), dtype=np.float32)
        for t, win in zip(tiles, weights):
            total[t.region] += win
        t1 = time.perf_counter()
        scores = None  # (K, H, W): blended probabilities, or blended one-hot votes for mask models
        attention: dict[str, np.ndarray] = {}
        jobs = self._opts.max_in_flight
        results = self._seg.stream(((f"tile{i}", bgr[t.region]) for i, t in enumerate(tiles)),
                                   max_in_flight=jobs, return_probabilities=True)
        for t, win, r in zip(tiles, weights, results):
            share = win / total[t.region]
            probs = r.probabilities if r.probabilities is not None else one_hot(r.mask, len(r.classes))
            if scores is None:
                scores = np.zeros((probs.shape[0], h, w), dtype=np.float32)
            scores[(slice(None), *t.region)] += probs * share
            for name, amap in r.attention.items():
                attention.setdefault(name, np.zeros((h, w), dtype=np.float32))[t.region] += amap * share
        t2 = time.perf_counter()
        mask = self._codec.decide(scores)
        soft = self._codec.output.kind != "mask"
        t3 = time.perf_counter()
        timings = StageTimings(preprocess=(t1 - t0) * 1e3, infer=(t2 - t1) * 1e3,
                               postprocess=(t3 - t2) * 1e3, total=(t3 - t0) * 1e3)
        return self._codec.result(mask, scores if (return_probabilities and soft) else None, attention,
                                  source, timings)

    def _window(self, size: tuple[int, int]) -> np.ndarray:
        win = self._windows.get(size)
        if win is None:
            win = self._windows[size] = blend_window(size, self._opts.blend)
        return win


__all__ = ["GAUSSIAN_SIGMA", "Blend", "Tile", "TileOptions", "TiledSegmenter", "blend_window", "tile_grid",
           "tile_starts"]
