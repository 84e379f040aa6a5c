"""Image -> model input, exactly as in training (attnseg.imaging), plus the geometry to undo it.

Static models: fit the image to the model size under the model's resize policy
(``attnseg.resize_policy``, shared with training): ``stretch`` resizes to it, ``letterbox``
keeps the aspect ratio and pads with the normalization mean colour; the content box is
recorded so postprocessing crops the padding away before resizing back. Dynamic models: pad bottom/right to a multiple of the model's divisor (edge pixels
replicated) and crop back afterwards. With preprocessing embedded in the IR the model takes
raw uint8 BGR NHWC pixels and normalizes itself, so it is never done twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from attnseg.errors import InputFileError, ModelConfigError
from attnseg.imaging import normalize, read_image, to_bgr8
from attnseg.metadata import DEFAULT_INTERPOLATION, ModelMetadata, Normalization
from attnseg.resize_policy import Placement, ResizePolicy, fit, pad_color, place_image
from attnseg.runtime.ports import Port

ImageLike = Any  # str | Path | np.ndarray


@dataclass(frozen=True)
class InputSpec:
    """What the IR's image input wants."""

    layout: str  # "NCHW" | "NHWC"
    dtype: np.dtype
    channels: int
    size: tuple[int, int] | None  # (H, W) for static models, None when H and W are dynamic
    normalization: Normalization
    embedded: bool  # preprocessing (scale, mean/std, channel order, layout) inside the IR
    divisor: int = 16
    resize_policy: ResizePolicy = ResizePolicy.STRETCH  # static models only
    pad_value: tuple[int, ...] = (0, 0, 0)  # BGR uint8 colour of letterbox padding
    interpolation: str = DEFAULT_INTERPOLATION  # how images are resized (metadata ``input_interpolation``)


@dataclass
class Prepared:
    """A model-ready batch of one image and how to map model pixels back to the image."""

    tensor: np.ndarray
    original_size: tuple[int, int]  # (H, W) of the given image
    input_size: tuple[int, int]  # (H, W) fed to the model
    valid_size: tuple[int, int]  # (H, W) of image content inside the input (the rest is padding)
    source: str | None = None
    offset: tuple[int, int] = (0, 0)  # (top, left) of the image content inside the input

    @property
    def placement(self) -> Placement:
        """Where the image content sits in the model input (see ``attnseg.resize_policy``)."""
        return Placement(self.original_size, self.input_size, self.offset[0], self.offset[1],
                         self.valid_size[0], self.valid_size[1])


def input_spec(port: Port, meta: ModelMetadata, name: str, policy: ResizePolicy | None = None) -> InputSpec:
    """What the image input ``port`` wants, from its shape and the model's metadata;
    ``policy`` overrides the model's recorded resize policy."""
    shape = port.shape
    if shape is None or len(shape) != 4:
        raise ModelConfigError(f"{name}: the image input must be 4-D, got {port.describe()}.")
    layout = meta.input_layout.upper()
    if layout not in ("NCHW", "NHWC"):
        raise ModelConfigError(f"{name}: unsupported input layout {meta.input_layout!r}.")
    hd, wd, cd = (1, 2, 3) if layout == "NHWC" else (2, 3, 1)
    if shape[0] is not None and shape[0] != 1:
        raise ModelConfigError(
            f"{name} has a fixed batch of {shape[0]}; export it with batch 1 "
            "(stream() runs several requests in parallel instead)."
        )
    h, w = shape[hd], shape[wd]
    if (h is None) != (w is None):
        raise ModelConfigError(f"{name}: height and width must be both static or both dynamic, "
                               f"got {port.describe()}.")
    size = None if h is None else (int(h), int(w))
    channels = shape[cd] if shape[cd] is not None else int(meta.input_channels)
    if channels not in (1, 3):
        raise ModelConfigError(f"{name}: the image input has {channels} channels (expected 1 or 3).")
    return InputSpec(
        layout=layout, dtype=port.dtype, channels=int(channels), size=size,
        normalization=meta.normalization, embedded=bool(meta.preprocessing_embedded),
        divisor=int(meta.input_divisor),
        resize_policy=policy or ResizePolicy.parse(meta.resize_policy),
        pad_value=pad_color(meta.normalization, channels),
        interpolation=str(meta.input_interpolation),
    )


def load_image(image: ImageLike) -> tuple[np.ndarray, str | None]:
    """A path or an array -> HxWx3 uint8 BGR and a name for messages and results."""
    if isinstance(image, (str, Path)):
        return read_image(image), str(image)
    if isinstance(image, np.ndarray):
        return to_bgr8(image, source="image array"), None
    raise InputFileError(
        f"Expected an image path or a numpy array (HxWx3 BGR uint8, grayscale, RGBA or 16-bit), "
        f"got {type(image).__name__}."
    )


def padded_size(h: int, w: int, divisor: int) -> tuple[int, int]:
    """The smallest (H, W) >= (h, w) divisible by ``divisor``."""
    return -(-h // divisor) * divisor, -(-w // divisor) * divisor


def prepare(image: ImageLike, spec: InputSpec) -> Prepared:
    """Decode/convert ``image`` and build the input batch described by ``spec``."""
    bgr, source = load_image(image)
    h, w = bgr.shape[:2]
    offset = (0, 0)
    if spec.size is not None:
        placement = fit((h, w), spec.size, spec.resize_policy)
        fed = place_image(bgr, placement, spec.pad_value, spec.interpolation)
        valid = (placement.height, placement.width)
        offset = (placement.top, placement.left)
    else:
        ph, pw = padded_size(h, w, spec.divisor)
        fed = bgr if (ph, pw) == (h, w) else cv2.copyMakeBorder(
            bgr, 0, ph - h, 0, pw - w, cv2.BORDER_REPLICATE
        )
        valid = (h, w)
    return Prepared(
        tensor=to_tensor(fed, spec),
        original_size=(h, w),
        input_size=(int(fed.shape[0]), int(fed.shape[1])),
        valid_size=(int(valid[0]), int(valid[1])),
        source=source,
        offset=offset,
    )


def to_tensor(bgr: np.ndarray, spec: InputSpec) -> np.ndarray:
    """HxWx3 uint8 BGR at the input size -> (1, ...) array in the IR's layout and type."""
    if spec.embedded:
        img = bgr if spec.channels == 3 else cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)[:, :, None]
        x = img[None]  # 1xHxWxC uint8, the IR does the rest
        if spec.layout == "NCHW":
            x = x.transpose(0, 3, 1, 2)
    else:
        norm = spec.normalization
        if spec.channels == 1 and norm.channel_order != "GRAY":
            norm = Normalization(norm.mean[:1], norm.std[:1], "GRAY", norm.pixel_scale)
        x = normalize(bgr, norm)[None]  # 1xCxHxW float32
        if spec.layout == "NHWC":
            x = x.transpose(0, 2, 3, 1)
    if x.dtype != spec.dtype:
        x = x.astype(spec.dtype)
    return np.ascontiguousarray(x)
