"""Augmentation: probability, geometry shared by image and mask, nearest labels, fill values."""

from __future__ import annotations

import numpy as np
import pytest

from attnseg.data import Augmentation
from attnseg.data.augment import rotate
from attnseg.errors import DataError


def blob_pair(h: int = 48, w: int = 64) -> tuple[np.ndarray, np.ndarray]:
    mask = np.zeros((h, w), np.uint8)
    mask[5:20, 8:40] = 1
    mask[30:45, 40:60] = 2
    image = np.dstack([mask * 100] * 3).astype(np.uint8)  # the image shows the mask
    return image, mask


def rng(i: int = 0) -> np.random.Generator:
    return np.random.default_rng(i)


def test_prob_zero_is_identity():
    image, mask = blob_pair()
    out_i, out_m = Augmentation(prob=0.0)(image, mask, rng())
    assert np.array_equal(out_i, image) and np.array_equal(out_m, mask)


def test_flips_move_image_and_mask_together():
    image, mask = blob_pair()
    aug = Augmentation(prob=1.0, rotate_deg=0, crop_scale=(1.0, 1.0), color_jitter=0)
    out_i, out_m = aug(image, mask, rng())
    assert np.array_equal(out_m, mask[::-1, ::-1])
    assert np.array_equal(out_i[:, :, 0], out_m * 100)


def test_rotation_nearest_labels_and_fill():
    image, mask = blob_pair()
    img_r, m_r = rotate(image, mask, 30.0, fill=255)
    assert set(np.unique(m_r)) <= {0, 1, 2, 255}  # nearest: no invented labels
    assert m_r[0, 0] == 255 and m_r[-1, -1] == 255  # corners come from outside: ignore
    assert img_r[0, 0].tolist() == [0, 0, 0]
    inside = m_r != 255
    agree = np.mean((np.rint(img_r[:, :, 0] / 100.0) == m_r)[inside])
    assert agree > 0.97  # the same geometry (bilinear edges differ by a pixel at most)
    _, m_b = rotate(image, (mask > 0).astype(np.uint8), 30.0, fill=0)
    assert m_b[0, 0] == 0 and set(np.unique(m_b)) == {0, 1}


def test_crop_then_resize_and_color_only_on_image():
    image, mask = blob_pair(96, 128)
    aug = Augmentation(
        prob=1.0, rotate_deg=0, hflip=False, vflip=False, crop_scale=(0.5, 0.5), color_jitter=0
    )
    out_i, out_m = aug(image, mask, rng(3), size=(24, 32))
    assert out_i.shape == (24, 32, 3) and out_m.shape == (24, 32)
    assert set(np.unique(out_m)) <= {0, 1, 2}
    assert np.mean(np.rint(out_i[:, :, 0] / 100.0) == out_m) > 0.95
    jitter = Augmentation(
        prob=1.0, rotate_deg=0, hflip=False, vflip=False, crop_scale=(1.0, 1.0), color_jitter=0.3
    )
    photo = np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8)
    j_i, j_m = jitter(photo, mask[:16, :16], rng(1))
    assert np.array_equal(j_m, mask[:16, :16]) and not np.array_equal(j_i, photo)
    assert j_i.dtype == np.uint8


def test_each_transform_fires_with_its_probability():
    image, mask = blob_pair()
    aug = Augmentation(prob=0.5, rotate_deg=0, vflip=False, crop_scale=(1.0, 1.0), color_jitter=0)
    flips = sum(not np.array_equal(aug(image, mask, rng(i))[1], mask) for i in range(400))
    assert 160 < flips < 240


def test_bad_parameters():
    with pytest.raises(DataError, match="probability must be in"):
        Augmentation(prob=1.5)
    with pytest.raises(DataError, match="crop_scale"):
        Augmentation(crop_scale=(0.0, 1.0))
    image, mask = blob_pair()
    with pytest.raises(DataError, match="differ in size"):
        Augmentation()(image, mask[:10], rng())
