"""Cityscapes on a tiny tree built in tmp_path: label ids -> 19 train ids, others ignored."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from attnseg.data import CITYSCAPES_CLASSES, SegmentationDataset, cityscapes_samples, open_dataset, read_mask
from attnseg.data.samples import MaskEncoding
from attnseg.errors import DataError, InputFileError

# label id -> expected train id (cityscapesscripts labels.py)
EXPECTED = {0: 255, 1: 255, 4: 255, 6: 255, 7: 0, 8: 1, 9: 255, 11: 2, 12: 3, 13: 4, 14: 255, 17: 5,
            19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 29: 255,
            30: 255, 31: 16, 32: 17, 33: 18}  # fmt: skip
IDS = np.array(sorted(EXPECTED), np.uint8)


def build(root: Path, split: str, frames: dict[str, int], size=(8, 16)) -> None:
    for city, n in frames.items():
        for f in range(n):
            stem = f"{city}_000000_{f:06d}"
            img = root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png"
            lab = root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png"
            img.parent.mkdir(parents=True, exist_ok=True)
            lab.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(img), np.full((*size, 3), 40 * f, np.uint8))
            ids = np.resize(IDS, size[0] * size[1]).reshape(size)
            cv2.imwrite(str(lab), ids)
            # the other gtFine files of the real release must not be picked up
            cv2.imwrite(str(lab.parent / f"{stem}_gtFine_color.png"), np.zeros((*size, 3), np.uint8))


@pytest.fixture()
def tree(tmp_path):
    build(tmp_path, "train", {"aachen": 2, "bremen": 1})
    build(tmp_path, "val", {"frankfurt": 1})
    return tmp_path


def test_cityscapes_samples_and_train_ids(tree):
    train = cityscapes_samples(tree, "train")
    assert [s.name for s in train] == ["aachen_000000_000000", "aachen_000000_000001", "bremen_000000_000000"]
    assert train[0].mask.name == "aachen_000000_000000_gtFine_labelIds.png"
    m = read_mask(train[0].mask, "multiclass", 19, encoding=MaskEncoding.CITYSCAPES)
    raw = cv2.imread(str(train[0].mask), cv2.IMREAD_UNCHANGED)
    assert m.shape == raw.shape
    for label_id, train_id in EXPECTED.items():
        assert set(np.unique(m[raw == label_id])) == {train_id}, label_id


def test_open_cityscapes(tree):
    info = open_dataset(f"cityscapes:{tree}")
    assert info.task == "multiclass" and info.classes == CITYSCAPES_CLASSES and info.num_classes == 19
    assert info.ignore_index == 255
    assert {k: len(v) for k, v in info.predefined_splits.items()} == {"train": 3, "val": 1}
    assert info.official_test == "val"
    assert info.default_split(val_fraction=0.34, seed=0).counts == {"train": 2, "val": 1, "test": 1}
    ds = SegmentationDataset(info.samples, (8, 16), info.normalization, info.task, info.num_classes)
    _, y = ds[3]
    assert set(np.unique(y)) == set(range(19)) | {255}


def test_cityscapes_bad_input(tree):
    (tree / "gtFine" / "train" / "bremen" / "bremen_000000_000000_gtFine_labelIds.png").unlink()
    with pytest.raises(
        DataError,
        match=r"1 of 3 images have no \*_gtFine_labelIds.png label: bremen/bremen_000000_000000_leftImg8bit.png",
    ):
        cityscapes_samples(tree, "train")
    with pytest.raises(InputFileError, match="Cityscapes image folder for 'test'"):
        cityscapes_samples(tree, "test")
    with pytest.raises(InputFileError, match="Cityscapes folder .* does not exist"):
        open_dataset(f"cityscapes:{tree / 'nope'}")
