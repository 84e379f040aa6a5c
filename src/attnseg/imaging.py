"""Image decoding and model-input preparation shared by data, export checks and the runtime.

numpy + OpenCV only. One definition of "what the model sees" keeps training, parity checks,
calibration and inference consistent: decode to 8-bit BGR (grayscale, RGBA and 16-bit
inputs converted explicitly, never guessed from ``image.max()``), stretch-resize to the
model size with the model's recorded interpolation (``resize_image``), then ``(pixel / pixel_scale - mean) / std`` in the model's channel order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from attnseg.errors import InputFileError, ModelConfigError
from attnseg.metadata import DEFAULT_INTERPOLATION, INTERPOLATIONS, MAX_INPUT_PIXELS, Normalization

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


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


def decode_image(data: bytes | np.ndarray, source: str = "image", max_pixels: int | None = None) -> np.ndarray:
    """Decode an encoded file's bytes (JPEG, PNG, ...) exactly as ``read_image`` does.

    An image whose header declares more than ``max_pixels`` (default ``MAX_IMAGE_PIXELS``) is
    refused with ``ImageTooLargeError`` before anything is decoded.

    Separate from the file read so callers can time I/O and decoding apart (the cluster path).
    """
    buf = np.frombuffer(data, dtype=np.uint8) if isinstance(data, (bytes, bytearray, memoryview)) else data
    if buf.size == 0:
        raise InputFileError(f"Image {source} is empty (0 bytes).")
    check_image_size(buf, max_pixels, source)  # the header's size, before anything is decoded
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


def resize_image(img: np.ndarray, size: Sequence[int], interpolation: str = DEFAULT_INTERPOLATION) -> np.ndarray:
    """Stretch-resize to ``size`` = (H, W): the one image resize of training's data pipeline and
    the runtime's codec, so a model sees at inference what it was trained on.

    ``interpolation`` (a model's recorded ``input_interpolation``, ``attnseg.metadata.INTERPOLATIONS``):
    ``area``: ``cv2.INTER_AREA`` when shrinking both sides, ``cv2.INTER_LINEAR`` otherwise;
    ``linear``: ``cv2.INTER_LINEAR`` always (about half the CPU on a Kvasir-size JPEG). The default is
    ``DEFAULT_INTERPOLATION``, what new models record."""
    if interpolation not in INTERPOLATIONS:
        raise ModelConfigError(f"input_interpolation must be one of {', '.join(INTERPOLATIONS)}, "
                               f"got {interpolation!r}.")
    h, w = int(size[0]), int(size[1])
    if img.shape[:2] == (h, w):
        return img
    shrink = interpolation == "area" and img.shape[0] > h and img.shape[1] > w
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


def to_model_input(bgr: np.ndarray, size: Sequence[int], norm: Normalization,
                   interpolation: str = DEFAULT_INTERPOLATION) -> np.ndarray:
    """One decoded image -> a (1, C, H, W) float32 batch, exactly as the model was trained
    (``interpolation``: the model's recorded ``input_interpolation``)."""
    return normalize(resize_image(bgr, size, interpolation), norm)[None]


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputFileError(f"Folder {folder} does not exist.")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


# ---------------------------------------------------------------------- declared size (no decoding)
#: The most pixels ``decode_image`` (and so ``read_image``, ``Segmenter``, ``seg-infer`` and the Ray
#: workers) decodes: 8192 x 8192 (192 MiB as BGR). Checked on the file's header before decoding;
#: override with the environment variable ``ATTNSEG_MAX_IMAGE_PIXELS``.
MAX_IMAGE_PIXELS = 8192 * 8192
MAX_IMAGE_PIXELS_ENV = "ATTNSEG_MAX_IMAGE_PIXELS"


class ImageTooLargeError(InputFileError):
    """An encoded image declares more pixels than allowed (refused before it is decoded)."""

    http_status = 413


def declared_image_size(data: bytes | np.ndarray | memoryview) -> tuple[int, int] | None:
    """(height, width) an encoded image declares in its header, read without decoding it.

    PNG (IHDR), JPEG (the first SOF marker), BMP, GIF, WebP (VP8, VP8L, VP8X), TIFF (the first
    IFD, as OpenCV reads it) and PNM. ``None`` when the format is not one of these or the header
    is cut short (the decoder then decides).
    """
    buf = memoryview(data).cast("B") if not isinstance(data, np.ndarray) else memoryview(
        np.ascontiguousarray(data).reshape(-1).view(np.uint8))
    head = bytes(buf[:32])
    try:
        if head.startswith(b"\x89PNG\r\n\x1a\n"):
            if head[12:16] == b"IHDR" and len(head) >= 24:
                return int.from_bytes(head[20:24], "big"), int.from_bytes(head[16:20], "big")
            return None
        if head.startswith(b"\xff\xd8"):
            return _jpeg_size(buf)
        if head.startswith(b"BM") and len(head) >= 26:
            if int.from_bytes(head[14:18], "little") == 12:  # BITMAPCOREHEADER
                return int.from_bytes(head[20:22], "little"), int.from_bytes(head[18:20], "little")
            return (abs(int.from_bytes(head[22:26], "little", signed=True)),
                    abs(int.from_bytes(head[18:22], "little", signed=True)))
        if head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
            return int.from_bytes(head[8:10], "little"), int.from_bytes(head[6:8], "little")
        if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            return _webp_size(bytes(buf[:32]))
        if head[:4] in (b"II*\x00", b"MM\x00*"):
            return _tiff_size(buf, "little" if head[:2] == b"II" else "big")
        if len(head) >= 2 and head[0:1] == b"P" and head[1:2] in b"123456":
            return _pnm_size(bytes(buf[:1024]))
    except (IndexError, ValueError):
        return None
    return None


def check_image_size(data: bytes | np.ndarray | memoryview, max_pixels: int | None = None,
                     source: str = "image", require_known: bool = False) -> tuple[int, int] | None:
    """Refuse an encoded image whose header declares more than ``max_pixels`` pixels.

    ``max_pixels`` None: ``MAX_IMAGE_PIXELS`` (or ``$ATTNSEG_MAX_IMAGE_PIXELS``). Raises
    ``ImageTooLargeError`` naming the limit; with ``require_known`` an image whose size cannot be
    read from its header (an unlisted format) is refused too (a server's choice). Returns (H, W).
    """
    size = declared_image_size(data)
    if size is None:
        if require_known:
            raise InputFileError(f"Image {source}: its size cannot be read from its header. Send JPEG, PNG, BMP, "
                                 "TIFF, WebP, GIF or PNM files.")
        return None
    check_pixels(*size, source=f"Image {source}", max_pixels=max_pixels)
    return size


def check_pixels(h: int, w: int, source: str, max_pixels: int | None = None) -> None:
    """Refuse a picture (an encoded image's header, a video's frame size) of more than
    ``max_pixels`` pixels (None: ``MAX_IMAGE_PIXELS`` or ``$ATTNSEG_MAX_IMAGE_PIXELS``), before
    anything of that size is decoded. ``source`` starts the message ("Image x.png", "Video y.mp4")."""
    limit = default_max_image_pixels() if max_pixels is None else int(max_pixels)
    if h * w > limit:
        raise ImageTooLargeError(
            f"{source} declares {w}x{h} = {h * w:,} pixels, over the limit of {limit:,} pixels; it was "
            "not decoded. Send a smaller image" + (" (or raise the limit)." if max_pixels is not None else
                                                    f" (or raise the limit with ${MAX_IMAGE_PIXELS_ENV}).")
        )


def default_max_image_pixels() -> int:
    import os

    value = os.environ.get(MAX_IMAGE_PIXELS_ENV)
    if not value:
        return MAX_IMAGE_PIXELS
    try:
        limit = int(value)
    except ValueError:
        raise InputFileError(f"${MAX_IMAGE_PIXELS_ENV} must be a number of pixels, got {value!r}.") from None
    if limit < 1:
        raise InputFileError(f"${MAX_IMAGE_PIXELS_ENV} must be >= 1, got {limit}.")
    return limit


_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_size(buf: memoryview) -> tuple[int, int] | None:
    pos, n = 2, len(buf)
    while pos + 4 <= n:
        if buf[pos] != 0xFF:
            return None
        marker = buf[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # no length
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, start of scan before any SOF
            return None
        length = (buf[pos + 2] << 8) | buf[pos + 3]
        if marker in _JPEG_SOF:
            if pos + 9 > n:
                return None
            return (buf[pos + 5] << 8) | buf[pos + 6], (buf[pos + 7] << 8) | buf[pos + 8]
        if length < 2:
            return None
        pos += 2 + length
    return None


def _webp_size(head: bytes) -> tuple[int, int] | None:
    chunk = head[12:16]
    if chunk == b"VP8 " and len(head) >= 30:
        return (int.from_bytes(head[28:30], "little") & 0x3FFF, int.from_bytes(head[26:28], "little") & 0x3FFF)
    if chunk == b"VP8L" and len(head) >= 25:
        bits = int.from_bytes(head[21:25], "little")
        return ((bits >> 14) & 0x3FFF) + 1, (bits & 0x3FFF) + 1
    if chunk == b"VP8X" and len(head) >= 30:
        return int.from_bytes(head[27:30], "little") + 1, int.from_bytes(head[24:27], "little") + 1
    return None


def _tiff_size(buf: memoryview, order: str) -> tuple[int, int] | None:
    def u(pos: int, size: int) -> int:
        if pos + size > len(buf):
            raise IndexError
        return int.from_bytes(bytes(buf[pos:pos + size]), order)

    ifd = u(4, 4)
    count = u(ifd, 2)
    dims: dict[int, int] = {}
    for i in range(min(count, 4096)):
        entry = ifd + 2 + 12 * i
        tag, kind = u(entry, 2), u(entry + 2, 2)
        if tag in (256, 257):
            dims[tag] = u(entry + 8, 2) if kind == 3 else u(entry + 8, 4)
    if 256 in dims and 257 in dims:
        return dims[257], dims[256]
    return None


def _pnm_size(head: bytes) -> tuple[int, int] | None:
    tokens: list[int] = []
    for line in head[2:].split(b"\n"):
        for tok in line.split(b"#", 1)[0].split():
            tokens.append(int(tok))
            if len(tokens) == 2:
                return tokens[1], tokens[0]
    return None
