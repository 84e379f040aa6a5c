"""Mask decoding: one file -> an HxW uint8 label map the loss and the metrics can trust.

Binary masks: every non-zero value of a lossless mask is foreground (0/1, 0/255, 0/100 and
0..7 all read alike); JPEG masks such as Kvasir-SEG's carry values like 1..20 and 240..255
around the edges, so they are cut halfway up their range (128 for 0/255). A colour mask has no
binary reading and is refused. Class-index masks are kept
as they are; ids that are neither a class nor the ignore index are an error naming the file,
because a silently clipped label trains a wrong model.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from attnseg.data.samples import MaskEncoding
from attnseg.errors import DataError, InputFileError

log = logging.getLogger(__name__)

BINARY_THRESHOLD = 128
JPEG_NOISE_MAX = 32  # a JPEG mask whose values all stay below this holds no foreground
COLOUR_SPREAD = 64  # channels differing by more than this on 1% of the pixels: a colour mask
DEFAULT_IGNORE_INDEX = 255
CAMVID_VOID_ID = 11
LOSSLESS_SUFFIXES = (".png", ".bmp", ".tif", ".tiff")

CAMVID_CLASSES = [
    "Sky", "Building", "Pole", "Road", "Pavement", "Tree",
    "SignSymbol", "Fence", "Car", "Pedestrian", "Bicyclist",
]  # fmt: skip

#: (labelId, trainId) of the 19 Cityscapes evaluation classes (cityscapesscripts labels.py).
CITYSCAPES_TRAIN_IDS: dict[int, int] = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9,
    23: 10, 24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
}  # fmt: skip
CITYSCAPES_CLASSES = [
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
    "motorcycle", "bicycle",
]  # fmt: skip


def cityscapes_lut(ignore_index: int = DEFAULT_IGNORE_INDEX) -> np.ndarray:
    """256-entry labelId -> trainId table; every id outside the 19 classes maps to ignore."""
    lut = np.full(256, ignore_index, dtype=np.uint8)
    for label_id, train_id in CITYSCAPES_TRAIN_IDS.items():
        lut[label_id] = train_id
    return lut


def _decode(path: Path) -> np.ndarray:
    if not path.exists():
        raise InputFileError(f"Mask {path} does not exist.")
    data = np.fromfile(str(path), dtype=np.uint8)
    if data.size == 0:
        raise InputFileError(f"Mask {path} is empty (0 bytes).")
    m = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if m is None:
        raise InputFileError(f"Mask {path} cannot be decoded (corrupt or not an image).")
    return m


def _single_channel(m: np.ndarray, path: Path, binary: bool) -> np.ndarray:
    if m.ndim == 3 and m.shape[2] == 4:
        m = m[:, :, :3]
    if m.ndim == 3 and m.shape[2] == 1:
        m = m[:, :, 0]
    if m.ndim == 3:
        if binary:
            # JPEG masks saved with 3 channels differ by a few levels; take the brightest. A real
            # colour mask (a palette, an overlay) has no single reading as foreground / background.
            spread = m.max(axis=2).astype(np.int16) - m.min(axis=2)
            if np.count_nonzero(spread > COLOUR_SPREAD) > 0.01 * spread.size:
                raise DataError(
                    f"Mask {path} is a colour image; a binary task needs grayscale masks (0 = background, "
                    "anything else = foreground). Convert it, or train a multiclass model on class-id masks."
                )
            return m.max(axis=2)
        if not (np.array_equal(m[:, :, 0], m[:, :, 1]) and np.array_equal(m[:, :, 0], m[:, :, 2])):
            raise DataError(
                f"Mask {path} is a colour image; class masks must hold one class id per pixel "
                "(a single-channel PNG, e.g. Cityscapes *_labelIds.png, not *_color.png)."
            )
        return m[:, :, 0]
    return m


def read_mask(
    path: str | Path,
    task: str,
    num_classes: int | None = None,
    *,
    encoding: MaskEncoding | str | None = None,
    ignore_index: int = DEFAULT_IGNORE_INDEX,
) -> np.ndarray:
    """Decode a mask file to HxW uint8 labels.

    ``task="binary"``: non-zero is foreground (``binary_labels``; ``binary_inverted``: the
    reverse); a colour mask raises ``DataError``.
    ``task="multiclass"``: the pixel value is the class id (``camvid``: 11 -> ignore;
    ``cityscapes``: labelIds -> train ids). With ``num_classes``, any id that is neither
    ``< num_classes`` nor ``ignore_index`` raises ``DataError`` naming the file and the ids.
    """
    path = Path(path)
    if task not in ("binary", "multiclass"):
        raise DataError(f"Unknown task {task!r}: use 'binary' or 'multiclass'.")
    encoding = MaskEncoding(encoding or MaskEncoding.AUTO)
    if encoding is MaskEncoding.AUTO:
        encoding = MaskEncoding.BINARY if task == "binary" else MaskEncoding.INDEX
    m = _decode(path)
    if m.dtype == np.uint16:
        if m.max() > 255:
            raise DataError(f"Mask {path} is 16-bit with values up to {int(m.max())}; use 8-bit masks.")
        m = m.astype(np.uint8)
    elif m.dtype != np.uint8:
        raise DataError(f"Mask {path} has unsupported pixel type {m.dtype}; use 8-bit masks.")
    binary = task == "binary"
    m = _single_channel(m, path, binary)

    if binary:
        if encoding not in (MaskEncoding.BINARY, MaskEncoding.BINARY_INVERTED):
            raise DataError(f"Mask {path}: encoding {encoding.value!r} is not a binary encoding.")
        out = binary_labels(m, lossless=path.suffix.lower() in LOSSLESS_SUFFIXES)
        if encoding is MaskEncoding.BINARY_INVERTED:
            out = 1 - out
        return out

    if encoding is MaskEncoding.CITYSCAPES:
        out = cityscapes_lut(ignore_index)[m]
    elif encoding is MaskEncoding.CAMVID:
        out = m.copy()
        out[out == CAMVID_VOID_ID] = ignore_index
    elif encoding is MaskEncoding.INDEX:
        out = m
        if path.suffix.lower() in (".jpg", ".jpeg"):
            log.warning("Class mask %s is a JPEG: lossy compression changes class ids.", path)
    else:
        raise DataError(f"Mask {path}: encoding {encoding.value!r} is binary, but the task is multiclass.")
    if num_classes is not None:
        check_class_ids(out, num_classes, ignore_index, path)
    return np.ascontiguousarray(out)


def binary_labels(m: np.ndarray, lossless: bool) -> np.ndarray:
    """One rule for binary masks: every non-zero value is foreground.

    Lossless masks (PNG, BMP, TIFF) are read exactly: 0/1, 0/255, 0/100 and 0..7 all mean
    "zero = background, anything else = foreground". JPEG adds noise around every edge, so its
    masks are cut halfway up their own range (at 128 for the usual 0/255 masks; at 50 for a
    0/100 mask); a JPEG whose values stay below 32 holds compression noise only.
    """
    if lossless:
        return (m > 0).astype(np.uint8)
    top = int(m.max()) if m.size else 0
    if top < JPEG_NOISE_MAX:
        return np.zeros(m.shape, np.uint8)
    return (m >= min(BINARY_THRESHOLD, (top + 1) // 2)).astype(np.uint8)


def check_class_ids(mask: np.ndarray, num_classes: int, ignore_index: int | None, source: Path | str) -> None:
    """Raise ``DataError`` if ``mask`` holds ids outside ``0..num_classes-1`` and the ignore index."""
    present = np.unique(mask)
    bad = [int(v) for v in present if v >= num_classes and v != ignore_index]
    if bad:
        shown = ", ".join(str(v) for v in bad[:10]) + (" ..." if len(bad) > 10 else "")
        ign = f" or {ignore_index} (ignore)" if ignore_index is not None else ""
        raise DataError(
            f"Mask {source} has class ids {shown} outside 0..{num_classes - 1}{ign}. "
            "Check --num-classes / the class list, or that this is a class-index mask."
        )
