"""The domain-shift augmentation on real Kvasir-SEG pairs: labels stay labels, geometry moves
image and mask together, draws are reproducible, and the training config can select it."""

from __future__ import annotations

import numpy as np
import pytest

from attnseg.data.domain_shift import DomainShiftAugmentation, add_specular_highlights
from attnseg.errors import DataError
from attnseg.imaging import resize_image, resize_mask

pytest.importorskip("albumentations")


@pytest.fixture(scope="module")
def pairs(kvasir_pairs_320):
    return kvasir_pairs_320


def test_binary_masks_stay_binary_and_sized(pairs):
    aug = DomainShiftAugmentation(prob=1.0)
    for i, (image, mask) in enumerate(pairs):
        for k in range(4):
            a, m = aug(image, mask, np.random.default_rng(100 * i + k), size=(256, 192))
            assert a.shape == (256, 192, 3) and a.dtype == np.uint8
            assert m.shape == (256, 192) and m.dtype == np.uint8
            assert set(np.unique(m).tolist()) <= {0, 1}


def test_geometry_moves_image_and_mask_together(pairs):
    """Paint the mask into the image in pure green, augment without photometric noise: the
    green pixels must land where the mask lands (nearest vs bilinear differ only at edges)."""
    aug = DomainShiftAugmentation(prob=1.0, specular_prob=0.0)
    image, mask = pairs[0]
    painted = image.copy()
    painted[mask > 0] = (0, 255, 0)
    agree = []
    for k in range(6):
        a, m = aug(painted, mask, np.random.default_rng(k), size=(256, 256))
        greenish = (a[..., 1].astype(int) - np.maximum(a[..., 0], a[..., 2]).astype(int)) > 60
        inter = np.logical_and(greenish, m > 0).sum()
        agree.append(2 * inter / max(1, greenish.sum() + (m > 0).sum()))
    assert np.median(agree) > 0.8, agree


def test_reproducible_and_varied(pairs):
    aug = DomainShiftAugmentation()
    image, mask = pairs[1]
    a1, m1 = aug(image, mask, np.random.default_rng(7), size=(256, 256))
    a2, m2 = aug(image, mask, np.random.default_rng(7), size=(256, 256))
    a3, _ = aug(image, mask, np.random.default_rng(8), size=(256, 256))
    assert np.array_equal(a1, a2) and np.array_equal(m1, m2)
    assert not np.array_equal(a1, a3)


def test_prob_zero_is_a_plain_resize(pairs):
    image, mask = pairs[2]
    a, m = DomainShiftAugmentation(prob=0.0)(image, mask, np.random.default_rng(0), size=(128, 128))
    assert np.array_equal(a, resize_image(image, (128, 128)))
    assert np.array_equal(m, resize_mask(mask, (128, 128)))


def test_multiclass_frame_is_ignored(pairs):
    """Zooming out leaves a frame of invented pixels: for multiclass masks it must carry the
    ignore index, not class 0."""
    image, mask = pairs[3]
    aug = DomainShiftAugmentation(prob=1.0, zoom=(0.5, 0.5), specular_prob=0.0)
    _, m = aug(image, mask, np.random.default_rng(3), fill=255, size=(256, 256))
    assert (m == 255).mean() > 0.2  # a 0.5 zoom-out leaves about 3/4 of the frame invented


def test_specular_highlights_only_brighten(pairs):
    image = pairs[4][0]
    out = add_specular_highlights(image, np.random.default_rng(1))
    assert out.shape == image.shape
    assert (out.astype(int) >= image.astype(int) - 1).all() and (out != image).any()


def test_bad_ranges_are_refused():
    with pytest.raises(DataError, match="probability"):
        DomainShiftAugmentation(prob=2.0)
    with pytest.raises(DataError, match="zoom"):
        DomainShiftAugmentation(zoom=(1.2, 0.8))


def test_train_config_selects_the_augmentation():
    from attnseg.train.loop import make_augmentation

    assert isinstance(make_augmentation("domain-shift", 0.5), DomainShiftAugmentation)
    with pytest.raises(DataError, match="Unknown augmentation"):
        make_augmentation("heavy", 0.5)
