"""Readers that turn a data set folder into a list of image/mask pairs (``Sample``).

Only paths are collected here; pixels are decoded lazily by the dataset, so listing 1000
Kvasir pairs costs a directory scan, not 1000 JPEG decodes. Every reader fails early and
by name: a missing folder, images without masks (first few named, plus the count), two
masks for one image, duplicate sample names.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from attnseg.errors import DataError, InputFileError
from attnseg.imaging import IMAGE_SUFFIXES, list_images

log = logging.getLogger(__name__)

#: How many offending names an error message lists before "... and N more".
NAMES_SHOWN = 5


class MaskEncoding(str, Enum):
    """How a mask file's pixel values become training labels (see ``read_mask``)."""

    AUTO = "auto"  # binary task: as BINARY; multiclass task: as INDEX
    BINARY = "binary"  # >= 128 is foreground (JPEG-safe); lossless 0/1 masks kept as they are
    BINARY_INVERTED = "binary_inverted"  # < 128 is foreground (ISBI: 0 = membrane)
    INDEX = "index"  # pixel value = class id, kept
    CAMVID = "camvid"  # class id, 11 (void) -> ignore index
    CITYSCAPES = "cityscapes"  # Cityscapes labelIds -> the 19 train ids, others -> ignore


@dataclass(frozen=True)
class Sample:
    """One image and its mask (``None`` for unlabelled images), named by a unique ``name``."""

    image: Path
    mask: Path | None
    name: str
    mask_encoding: MaskEncoding = MaskEncoding.AUTO


def name_list(names: list[str], shown: int = NAMES_SHOWN) -> str:
    """``a, b, c and 7 more`` for error messages."""
    names = list(names)
    head = ", ".join(names[:shown])
    return head if len(names) <= shown else f"{head} and {len(names) - shown} more"


def require_dir(path: Path, what: str) -> Path:
    """``path`` as an existing folder, or a clear error saying which folder was expected."""
    if not path.exists():
        raise InputFileError(f"{what} {path} does not exist.")
    if not path.is_dir():
        raise InputFileError(f"{what} {path} is a file, expected a folder.")
    return path


def check_unique(samples: list[Sample], where: str) -> list[Sample]:
    """Sample names are the keys of split files, so two samples may never share one."""
    seen: dict[str, Sample] = {}
    dups: list[str] = []
    for s in samples:
        if s.name in seen:
            dups.append(f"{s.name} ({seen[s.name].image.name} and {s.image.name})")
        seen[s.name] = s
    if dups:
        raise DataError(
            f"{where}: {len(dups)} sample names occur twice: {name_list(dups)}. "
            "Images must have unique file names (stems) within a data set."
        )
    return samples


def _index_masks(mask_dir: Path) -> dict[str, list[Path]]:
    index: dict[str, list[Path]] = {}
    for p in list_images(mask_dir):
        index.setdefault(p.stem, []).append(p)
    return index


def _pair(
    images: list[Path],
    mask_index: dict[str, list[Path]],
    mask_stems: tuple[str, ...],
    where: str,
    encoding: MaskEncoding,
    require_masks: bool = True,
) -> list[Sample]:
    """Match each image to exactly one mask whose stem is ``image stem + suffix`` for a suffix in
    ``mask_stems`` (tried in order)."""
    samples: list[Sample] = []
    missing: list[str] = []
    for img in images:
        found: list[Path] = []
        for suffix in mask_stems:
            found = mask_index.get(img.stem + suffix, [])
            if found:
                break
        if len(found) > 1:
            raise DataError(
                f"{where}: image {img.name} has {len(found)} masks "
                f"({', '.join(p.name for p in found)}); keep exactly one."
            )
        if not found:
            missing.append(img.name)
            continue
        samples.append(Sample(image=img, mask=found[0], name=img.stem, mask_encoding=encoding))
    if missing and require_masks:
        raise DataError(
            f"{where}: {len(missing)} of {len(images)} images have no mask: {name_list(missing)}. "
            "Add their masks (same file stem) or move the images out of the folder."
        )
    if not samples:
        raise DataError(f"{where}: no image/mask pairs found.")
    return check_unique(samples, where)


def _images_in(folder: Path, what: str) -> list[Path]:
    images = list_images(folder)
    if not images:
        raise DataError(f"{what} {folder} contains no images (looked for {', '.join(IMAGE_SUFFIXES)}).")
    return images


# ---------------------------------------------------------------------------------------------
# Kvasir-SEG and ISIC style folders


def is_isic_gt_folder(path: Path) -> bool:
    """ISIC ground-truth folders end in ``_GT`` (seed code) or contain ``GroundTruth`` (ISIC)."""
    return path.is_dir() and (path.name.endswith("_GT") or "GroundTruth" in path.name)


def _isic_images(folder: Path) -> list[Path]:
    # The ISIC 2017 input folders also hold ``X_superpixels.png``: not images to segment.
    return [p for p in _images_in(folder, "Image folder") if not p.stem.endswith("_superpixels")]


def _isic_pairs(image_dir: Path, gt_dir: Path) -> list[Sample]:
    where = f"ISIC folders {image_dir.name}/ + {gt_dir.name}/"
    return _pair(
        _isic_images(image_dir), _index_masks(gt_dir), ("_segmentation",), where, MaskEncoding.BINARY
    )


def find_isic_pairs(root: Path) -> list[tuple[Path, Path]]:
    """(image folder, ground-truth folder) pairs of an ISIC layout at ``root``.

    ``root`` may be the image folder itself (``train/`` beside ``train_GT/``) or a folder
    holding such pairs (``train/``, ``train_GT/``, ``valid/``, ``valid_GT/`` ...).
    """
    root = Path(root)
    sibling = root.parent / f"{root.name}_GT"
    if sibling.is_dir():
        return [(root, sibling)]
    pairs: list[tuple[Path, Path]] = []
    subdirs = sorted(p for p in root.iterdir() if p.is_dir())
    for d in subdirs:
        if is_isic_gt_folder(d):
            continue
        gt = root / f"{d.name}_GT"
        if gt.is_dir():
            pairs.append((d, gt))
    if not pairs:
        # Official ISIC naming: one input folder and one GroundTruth folder.
        gts = [d for d in subdirs if "GroundTruth" in d.name]
        inputs = [d for d in subdirs if not is_isic_gt_folder(d) and list_images(d)]
        if len(gts) == 1 and len(inputs) == 1:
            pairs.append((inputs[0], gts[0]))
    return pairs


def folder_pairs(
    root: str | Path,
    images: str = "images",
    masks: str = "masks",
    encoding: MaskEncoding | str = MaskEncoding.BINARY,
) -> list[Sample]:
    """Image/mask pairs from a folder.

    Layouts, tried in this order:
    - Kvasir-SEG: ``root/images/X.jpg`` with ``root/masks/X.<any suffix>`` (also accepted:
      ``X_mask`` / ``X_segmentation`` mask stems);
    - ISIC: ``X.jpg`` in a folder and ``X_segmentation.png`` in the ``<folder>_GT`` folder beside
      it; ``root`` is the image folder or the folder holding ``train/`` + ``train_GT/`` etc.
    """
    root = require_dir(Path(root), "Data folder")
    encoding = MaskEncoding(encoding)
    image_dir, mask_dir = root / images, root / masks
    if image_dir.is_dir() or mask_dir.is_dir():
        require_dir(image_dir, "Image folder")
        require_dir(mask_dir, f"Mask folder (expected beside {images}/)")
        where = f"{root}"
        return _pair(
            _images_in(image_dir, "Image folder"),
            _index_masks(mask_dir),
            ("", "_mask", "_segmentation"),
            where,
            encoding,
        )
    isic = find_isic_pairs(root)
    if isic:
        samples: list[Sample] = []
        for img_dir, gt_dir in isic:
            samples.extend(_isic_pairs(img_dir, gt_dir))
        return check_unique(samples, f"{root}")
    found = sorted(p.name + "/" for p in root.iterdir() if p.is_dir())
    raise DataError(
        f"{root} is not an image/mask data set: expected {images}/ and {masks}/ folders "
        f"(Kvasir-SEG layout) or X.jpg + <folder>_GT/X_segmentation.png (ISIC layout); "
        f"found folders: {', '.join(found) or 'none'}."
    )


# ---------------------------------------------------------------------------------------------
# CamVid (SegNet 11-class version)


def camvid_samples(root: str | Path, split: str) -> list[Sample]:
    """CamVid ``<split>/X.png`` with the class-id label ``<split>annot/X.png`` (11 = void)."""
    root = require_dir(Path(root), "CamVid folder")
    image_dir = root / split
    if not image_dir.is_dir():
        have = sorted(p.name for p in root.iterdir() if p.is_dir() and (root / f"{p.name}annot").is_dir())
        raise DataError(
            f"CamVid split '{split}' is not in {root}: no {split}/ folder "
            f"(splits present: {', '.join(have) or 'none'})."
        )
    annot = require_dir(root / f"{split}annot", f"CamVid label folder for '{split}'")
    return _pair(
        _images_in(image_dir, "CamVid image folder"),
        _index_masks(annot),
        ("",),
        f"CamVid {split}",
        MaskEncoding.CAMVID,
    )


# ---------------------------------------------------------------------------------------------
# Cityscapes (fine annotations)

CITYSCAPES_IMAGE_SUFFIX = "_leftImg8bit"
CITYSCAPES_LABEL_SUFFIX = "_gtFine_labelIds"


def cityscapes_samples(root: str | Path, split: str) -> list[Sample]:
    """``leftImg8bit/<split>/<city>/X_leftImg8bit.png`` with ``gtFine/<split>/<city>/X_gtFine_labelIds.png``.

    Sample names are ``X`` (``city_sequence_frame``), unique across cities.
    """
    root = require_dir(Path(root), "Cityscapes folder")
    img_root = require_dir(root / "leftImg8bit" / split, f"Cityscapes image folder for '{split}'")
    gt_root = require_dir(root / "gtFine" / split, f"Cityscapes label folder for '{split}'")
    images = sorted(img_root.glob(f"*/*{CITYSCAPES_IMAGE_SUFFIX}.png"))
    if not images:
        raise DataError(f"{img_root} has no <city>/*{CITYSCAPES_IMAGE_SUFFIX}.png images.")
    samples: list[Sample] = []
    missing: list[str] = []
    for img in images:
        stem = img.name[: -len(f"{CITYSCAPES_IMAGE_SUFFIX}.png")]
        label = gt_root / img.parent.name / f"{stem}{CITYSCAPES_LABEL_SUFFIX}.png"
        if not label.is_file():
            missing.append(f"{img.parent.name}/{img.name}")
            continue
        samples.append(Sample(image=img, mask=label, name=stem, mask_encoding=MaskEncoding.CITYSCAPES))
    if missing:
        raise DataError(
            f"Cityscapes {split}: {len(missing)} of {len(images)} images have no "
            f"*{CITYSCAPES_LABEL_SUFFIX}.png label: {name_list(missing)}. Unpack gtFine_trainvaltest "
            "into the same folder as leftImg8bit."
        )
    return check_unique(samples, f"Cityscapes {split}")


# ---------------------------------------------------------------------------------------------
# ISBI 2012 membranes


def isbi_samples(root: str | Path, foreground: str = "membrane") -> list[Sample]:
    """ISBI 2012 ``images/N.png`` + ``masks/N.png`` (255 = cell interior, 0 = membrane).

    ``foreground="membrane"`` (default, the challenge's target) makes membrane pixels 1;
    ``"cell"`` keeps the file's convention (white = 1).
    """
    if foreground not in ("membrane", "cell"):
        raise DataError(f"ISBI foreground must be 'membrane' or 'cell', not {foreground!r}.")
    enc = MaskEncoding.BINARY_INVERTED if foreground == "membrane" else MaskEncoding.BINARY
    samples = folder_pairs(root, encoding=enc)
    # Numeric names (0..29) sort as numbers, so splits and reports follow slice order.
    return sorted(samples, key=lambda s: (len(s.name), s.name))
