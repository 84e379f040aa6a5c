"""Image decoding and model-input preparation shared by data, export checks and the runtime.

numpy + OpenCV only. One definition of "what the model sees" keeps training, parity checks,
calibration and inference consistent: decode to 8-bit BGR (grayscale, RGBA and 16-bit
inputs converted explicitly, never guessed from ``image.max()``), stretch-resize to the
model size, then ``(pixel / pixel_scale - mean) / std`` in the model's channel order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from attnseg.errors import InputFileError, ModelConfigError
from attnseg.metadata import Normalization

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
#: The largest model input attnseg builds: 4096 x 4096 (a base-width-64 U-Net needs ~4 GB of f32
#: activations per 1024 x 1024 image). Larger inputs are refused before anything is allocated.
MAX_INPUT_PIXELS = 4096 * 4096


def parse_size(size: Sequence[int]) -> tuple[int, int]:
    """A user's ``(H, W)`` as two positive ints, or one clear ``ModelConfigError``."""
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ModelConfigError(f"input size must be two integers H W, got {size!r}.") from None
    if h < 1 or w < 1:
        raise ModelConfigError(f"input size must be positive, got {h}x{w}.")
    if h * w > MAX_INPUT_PIXELS:
        raise ModelConfigError(
            f"input size {h}x{w} is {h * w:,} pixels; attnseg refuses more than {MAX_INPUT_PIXELS:,} "
            "(4096x4096) before allocating anything. Give a smaller --input-size: images of any size are "
            "resized to it."
        )
    return h, w


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file to HxWx3 uint8 BGR, as OpenCV's ``imread`` would for a colour JPEG."""
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"Image {path} does not exist.")
    if path.is_dir():
        raise InputFileError(f"{path} is a folder, not an image.")
    return decode_image(np.fromfile(str(path), dtype=np.uint8), source=str(path))


def decode_image(data: bytes | np.ndarray, source: str = "image") -> np.ndarray:
    """Decode an encoded file's bytes (JPEG, PNG, ...) exactly as ``read_image`` does.

    Separate from the file read so callers can time I/O and decoding apart (the cluster path).
    """
    buf = np.frombuffer(data, dtype=np.uint8) if isinstance(data, (bytes, bytearray, memoryview)) else data
    if buf.size == 0:
        raise InputFileError(f"Image {source} is empty (0 bytes).")
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InputFileError(f"Image {source} cannot be decoded (corrupt or not an image).")
    return to_bgr8(img, source=source)


def to_bgr8(img: np.ndarray, source: str = "image") -> np.ndarray:
    """Convert grayscale, BGRA and 16-bit / float images to HxWx3 uint8 BGR.

    16-bit images are scaled by 1/257 (full range to full range); float images must be in
    [0, 1]. The bit depth decides the scale, not the pixel values.
    """
    if not isinstance(img, np.ndarray):
        raise InputFileError(f"{source}: expected a numpy array, got {type(img).__name__}.")
    if img.size == 0 or img.ndim < 2 or min(img.shape[:2]) == 0:
        raise InputFileError(f"{source} is empty (shape {img.shape}).")
    if img.ndim > 3:
        raise InputFileError(
            f"{source} has shape {img.shape}: one image is (H, W) or (H, W, C). A leading batch dimension is not "
            "taken; pass image[0], or several images one by one (e.g. to stream())."
        )
    if img.dtype == np.uint16:
        img = (img.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    elif img.dtype in (np.float16, np.float32, np.float64):
        finite = np.isfinite(img)
        if not finite.all():
            raise InputFileError(f"{source}: {img.size - int(np.count_nonzero(finite))} pixel values are NaN or "
                                 "infinite; a float image must hold finite values in [0, 1].")
        lo, hi = float(img.min()), float(img.max())
        if lo < 0.0 or hi > 1.0:
            raise InputFileError(f"{source}: a float image must be in [0, 1], got values {lo:g}..{hi:g} "
                                 "(divide 8-bit values by 255, or pass the uint8 array).")
        img = (img.astype(np.float32) * 255.0 + 0.5).astype(np.uint8)
    elif img.dtype == np.bool_:
        img = img.astype(np.uint8) * 255
    elif img.dtype != np.uint8:
        raise InputFileError(f"{source}: unsupported pixel type {img.dtype} (use 8- or 16-bit).")
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    channels = img.shape[2]
    if channels == 1:
        return cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2BGR)
    if channels == 3:
        return np.ascontiguousarray(img)
    if channels == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    raise InputFileError(f"{source}: {channels} channels is not an image (expected 1, 3 or 4).")


def resize_image(img: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """Stretch-resize to ``size`` = (H, W) with bilinear interpolation (area when shrinking)."""
    h, w = int(size[0]), int(size[1])
    if img.shape[:2] == (h, w):
        return img
    shrink = img.shape[0] > h and img.shape[1] > w
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def resize_mask(mask: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """Resize a label mask to ``size`` = (H, W); nearest neighbour so labels stay labels."""
    h, w = int(size[0]), int(size[1])
    if mask.shape[:2] == (h, w):
        return mask
    return cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST)


def normalize(bgr: np.ndarray, norm: Normalization) -> np.ndarray:
    """HxWx3 uint8 BGR -> 3xHxW float32 in the model's channel order and scale."""
    img = bgr
    if norm.channel_order == "RGB":
        img = img[:, :, ::-1]
    elif norm.channel_order == "GRAY":
        img = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)[:, :, None]
    x = img.astype(np.float32) / np.float32(norm.pixel_scale)
    mean = np.asarray(norm.mean, dtype=np.float32)[: x.shape[2]]
    std = np.asarray(norm.std, dtype=np.float32)[: x.shape[2]]
    x = (x - mean) / std
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def to_model_input(bgr: np.ndarray, size: Sequence[int], norm: Normalization) -> np.ndarray:
    """One decoded image -> a (1, C, H, W) float32 batch, exactly as the model was trained."""
    return normalize(resize_image(bgr, size), norm)[None]


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputFileError(f"Folder {folder} does not exist.")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
