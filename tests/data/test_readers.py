"""Readers on the real data sets and on small trees built in tmp_path (bad input included)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from attnseg.data import (
    MaskEncoding,
    camvid_samples,
    folder_pairs,
    isbi_samples,
    open_dataset,
    read_class_list,
    read_mask,
)
from attnseg.errors import DataError, InputFileError


def write(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array)
    return path


# ---------------------------------------------------------------------------- real data sets


def test_kvasir_pairs_and_jpeg_masks(shared_data):
    samples = folder_pairs(shared_data / "kvasir-seg")
    assert len(samples) == 1000
    s = samples[0]
    assert s.image.parent.name == "images" and s.mask.parent.name == "masks"
    assert s.name == s.image.stem == s.mask.stem
    raw = cv2.imread(str(s.mask), cv2.IMREAD_UNCHANGED)
    assert raw.ndim == 3  # Kvasir masks are 3-channel JPEGs with compression noise
    assert len(np.unique(raw)) > 2
    m = read_mask(s.mask, "binary")
    assert m.dtype == np.uint8 and m.shape == raw.shape[:2]
    assert set(np.unique(m)) == {0, 1}
    assert m.sum() == int((raw.max(axis=2) >= 128).sum())


def test_open_kvasir(shared_data):
    info = open_dataset(f"kvasir:{shared_data / 'kvasir-seg'}")
    assert info.task == "binary" and info.classes == ["polyp"] and info.num_classes == 1
    assert info.in_channels == 3 and info.ignore_index is None
    assert info.normalization.channel_order == "RGB"
    assert len(info.samples) == 1000 and info.predefined_splits == {}
    assert info.official_test is None
    assert info.default_split(seed=0).counts == {"train": 800, "val": 100, "test": 100}


def test_camvid(shared_data):
    root = shared_data / "camvid"
    val = camvid_samples(root, "val")
    assert len(val) == 101 and val[0].name == "0016E5_07959"
    assert val[0].mask_encoding is MaskEncoding.CAMVID
    m = read_mask(val[0].mask, "multiclass", 11, encoding=MaskEncoding.CAMVID)
    raw = cv2.imread(str(val[0].mask), cv2.IMREAD_UNCHANGED)
    assert (m == 255).sum() == (raw == 11).sum() > 0
    assert set(np.unique(m)) <= set(range(11)) | {255}
    assert np.array_equal(m[raw != 11], raw[raw != 11])
    names, void = read_class_list(root / "classes.txt")
    assert void == 11 and names[0] == "Sky" and names[-1] == "Bicyclist" and len(names) == 11
    info = open_dataset(f"camvid:{root}")
    assert info.task == "multiclass" and info.num_classes == 11 and info.ignore_index == 255
    assert {k: len(v) for k, v in info.predefined_splits.items()} == {"val": 101, "test": 233}
    assert len(info.samples) == 334
    split = info.default_split(val_fraction=0.1, seed=0)
    assert split["test"] == info.predefined_splits["test"]  # the official test set stays the test set
    assert split.counts == {"train": 91, "val": 10, "test": 233}
    assert set(split["train"] + split["val"]) == set(info.predefined_splits["val"])
    with pytest.raises(DataError, match="CamVid split 'train' is not in .*splits present: test, val"):
        camvid_samples(root, "train")


def test_isbi(shared_data):
    samples = isbi_samples(shared_data / "isbi-membrane")
    assert [s.name for s in samples[:3]] == ["0", "1", "2"] and len(samples) == 30
    raw = cv2.imread(str(samples[0].mask), cv2.IMREAD_UNCHANGED)
    membrane = read_mask(samples[0].mask, "binary", encoding=samples[0].mask_encoding)
    assert np.array_equal(membrane, (raw == 0).astype(np.uint8))  # 0 = membrane in the file
    assert 0.15 < membrane.mean() < 0.3
    cell = isbi_samples(shared_data / "isbi-membrane", foreground="cell")[0]
    assert np.array_equal(read_mask(cell.mask, "binary", encoding=cell.mask_encoding), 1 - membrane)
    info = open_dataset(f"isbi:{shared_data / 'isbi-membrane'}")
    assert info.in_channels == 1 and info.normalization.channel_order == "GRAY"
    assert info.classes == ["membrane"]


# ---------------------------------------------------------------------------- synthetic trees


def kvasir_tree(root: Path, n: int = 3, size=(20, 30), mask_suffix=".png") -> Path:
    for i in range(n):
        write(root / "images" / f"im{i}.jpg", np.full((*size, 3), 100 + i, np.uint8))
        m = np.zeros(size, np.uint8)
        m[: 5 + i] = 255
        write(root / "masks" / f"im{i}{mask_suffix}", m)
    return root


def test_folder_pairs_any_suffix(tmp_path):
    kvasir_tree(tmp_path, mask_suffix=".png")
    samples = folder_pairs(tmp_path)
    assert [s.name for s in samples] == ["im0", "im1", "im2"]
    assert samples[1].mask.name == "im1.png"
    assert read_mask(samples[1].mask, "binary").sum() == 6 * 30


def test_isic_layout(tmp_path):
    for split in ("train", "valid"):
        for i in range(2):
            name = f"ISIC_{split}{i}"
            write(tmp_path / split / f"{name}.jpg", np.zeros((8, 8, 3), np.uint8))
            write(tmp_path / split / f"{name}_superpixels.png", np.zeros((8, 8, 3), np.uint8))
            write(tmp_path / f"{split}_GT" / f"{name}_segmentation.png", np.full((8, 8), 255, np.uint8))
    samples = folder_pairs(tmp_path)
    assert [s.name for s in samples] == ["ISIC_train0", "ISIC_train1", "ISIC_valid0", "ISIC_valid1"]
    assert samples[0].mask.name == "ISIC_train0_segmentation.png"
    # the image folder itself, with its _GT sibling
    assert [s.name for s in folder_pairs(tmp_path / "valid")] == ["ISIC_valid0", "ISIC_valid1"]
    info = open_dataset(f"isic:{tmp_path}")
    assert info.predefined_splits == {
        "train": ["ISIC_train0", "ISIC_train1"],
        "valid": ["ISIC_valid0", "ISIC_valid1"],
    }


def test_binary_mask_variants(tmp_path):
    zero_one = write(tmp_path / "a.png", np.array([[0, 1], [1, 1]], np.uint8))
    assert read_mask(zero_one, "binary").tolist() == [[0, 1], [1, 1]]  # lossless 0/1 kept
    grey = write(tmp_path / "b.png", np.array([[0, 127], [128, 255]], np.uint8))
    assert read_mask(grey, "binary").tolist() == [[0, 1], [1, 1]]  # lossless: non-zero is foreground
    bgra = np.zeros((2, 2, 4), np.uint8)
    bgra[0, 0, :3] = 255
    assert read_mask(write(tmp_path / "c.png", bgra), "binary").tolist() == [[1, 0], [0, 0]]
    assert read_mask(grey, "binary", encoding="binary_inverted").tolist() == [[1, 0], [0, 0]]


# ---------------------------------------------------------------------------- bad input


def test_missing_folders(tmp_path):
    with pytest.raises(InputFileError, match="Data folder .*nope does not exist"):
        folder_pairs(tmp_path / "nope")
    (tmp_path / "images").mkdir()
    with pytest.raises(InputFileError, match="Mask folder .*masks does not exist"):
        folder_pairs(tmp_path)
    (tmp_path / "masks").mkdir()
    with pytest.raises(DataError, match="contains no images"):
        folder_pairs(tmp_path)
    other = tmp_path / "other"
    (other / "stuff").mkdir(parents=True)
    with pytest.raises(DataError, match=r"expected images/ and masks/.*found folders: stuff/"):
        folder_pairs(other)
    with pytest.raises(DataError, match="Unknown data set kind 'kvasirr'"):
        open_dataset(f"kvasirr:{tmp_path}")
    with pytest.raises(InputFileError, match="no-kind-here does not exist"):  # a bare path is a folder
        open_dataset(str(tmp_path / "no-kind-here"))


def test_images_without_masks_are_named(tmp_path):
    kvasir_tree(tmp_path, n=9)
    for i in (2, 4, 5, 6, 7, 8):
        (tmp_path / "masks" / f"im{i}.png").unlink()
    with pytest.raises(
        DataError, match=r"6 of 9 images have no mask: im2.jpg, im4.jpg, im5.jpg, im6.jpg, im7.jpg and 1 more"
    ):
        folder_pairs(tmp_path)


def test_two_masks_for_one_image(tmp_path):
    kvasir_tree(tmp_path, n=2)
    write(tmp_path / "masks" / "im1.jpg", np.zeros((20, 30), np.uint8))
    with pytest.raises(DataError, match="image im1.jpg has 2 masks"):
        folder_pairs(tmp_path)


def test_unreadable_and_out_of_range_masks(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(InputFileError, match="Mask .*bad.png cannot be decoded"):
        read_mask(bad, "binary")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(InputFileError, match="empty.png is empty"):
        read_mask(empty, "binary")
    ids = write(tmp_path / "ids.png", np.array([[0, 3], [12, 255]], np.uint8))
    assert read_mask(ids, "multiclass", 13).tolist() == [[0, 3], [12, 255]]
    with pytest.raises(DataError, match=r"ids.png has class ids 12 outside 0..10 or 255 \(ignore\)"):
        read_mask(ids, "multiclass", 11)
    colour = write(
        tmp_path / "colour.png",
        np.dstack([np.zeros((2, 2), np.uint8), np.ones((2, 2), np.uint8), np.zeros((2, 2), np.uint8)]),
    )
    with pytest.raises(DataError, match="colour.png is a colour image"):
        read_mask(colour, "multiclass", 3)


def test_folder_multiclass_spec(tmp_path):
    for i in range(2):
        write(tmp_path / "images" / f"x{i}.png", np.zeros((6, 6, 3), np.uint8))
        write(tmp_path / "masks" / f"x{i}.png", np.array([[0, 1, 2, 255, 2, 1]] * 6, np.uint8))
    info = open_dataset(f"folder:{tmp_path}", num_classes=3)
    assert info.task == "multiclass" and info.classes == ["class_0", "class_1", "class_2"]
    assert info.ignore_index == 255 and info.samples[0].mask_encoding is MaskEncoding.INDEX
    named = open_dataset(f"folder:{tmp_path}", classes=["bg", "a", "b"])
    assert named.num_classes == 3
    with pytest.raises(DataError, match="needs --num-classes"):
        open_dataset(f"folder:{tmp_path}", task="multiclass")
    binary = open_dataset(f"folder:{tmp_path}")
    assert binary.task == "binary" and binary.classes == ["foreground"]
    with pytest.raises(DataError, match="kvasir is a binary data set"):
        open_dataset(f"kvasir:{tmp_path}", task="multiclass")
