"""The endoscope augmentation on real Kvasir-SEG pairs: labels stay labels, the black frame hides
the mask under it, lens warps move image and mask together, draws are reproducible."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from attnseg.data.domain_shift import DomainShiftAugmentation
from attnseg.data.endoscope_shift import EndoscopeAugmentation, colour_response, endoscope_frame, expose, lens_warp
from attnseg.errors import DataError

pytest.importorskip("albumentations")


@pytest.fixture(scope="module")
def pairs(kvasir_pairs_320):
    return kvasir_pairs_320[:4]


def test_masks_stay_binary_sized_and_reproducible(pairs):
    aug = EndoscopeAugmentation(prob=1.0)
    for i, (image, mask) in enumerate(pairs):
        a, m = aug(image, mask, np.random.default_rng(i), size=(128, 160))
        b, n = aug(image, mask, np.random.default_rng(i), size=(128, 160))
        assert a.shape == (128, 160, 3) and a.dtype == np.uint8 and m.shape == (128, 160)
        assert set(np.unique(m)) <= {0, 1}
        assert np.array_equal(a, b) and np.array_equal(m, n)


def test_frame_is_black_and_background_outside_the_field():
    rng = np.random.default_rng(3)
    for _ in range(20):
        vis = endoscope_frame(96, 128, rng)
        assert vis.shape == (96, 128) and vis.min() >= 0 and vis.max() <= 1
        assert vis[48, 64] > 0.3  # the centre is always seen
    image = np.full((96, 128, 3), 200, np.uint8)
    mask = np.ones((96, 128), np.uint8)
    aug = EndoscopeAugmentation(prob=0.5, base=DomainShiftAugmentation(prob=0.0), frame_prob=1.0,
                                overlay_prob=0.0, interlace_prob=0.0, exposure_prob=0.0, lens_prob=0.0)
    seen = 0
    for seed in range(10):
        a, m = aug(image, mask, np.random.default_rng(seed))
        dark = a.max(axis=2) < 15  # 200 x visibility < 0.075
        assert not m[dark].any(), "a polyp under the black frame cannot be seen: background"
        seen += dark.any()
    assert seen >= 5


def test_lens_warp_moves_image_and_mask_together():
    image = np.zeros((100, 100, 3), np.uint8)
    mask = np.zeros((100, 100), np.uint8)
    cv2.circle(image, (70, 30), 8, (255, 255, 255), -1)
    cv2.circle(mask, (70, 30), 8, 1, -1)
    a, m = lens_warp(image, mask, np.random.default_rng(0))
    bright = a.max(axis=2) > 128
    inter = np.logical_and(bright, m > 0).sum()
    assert inter / max(1, (m > 0).sum()) > 0.8


def test_exposure_clips_and_keeps_dtype():
    image = np.full((8, 8, 3), 120, np.uint8)
    out = {int(expose(image, np.random.default_rng(s))[0, 0, 0]) for s in range(20)}
    assert min(out) < 100 and max(out) > 140


def test_bad_probability_is_refused():
    with pytest.raises(DataError, match="probability"):
        EndoscopeAugmentation(prob=1.5)


def test_train_config_selects_it():
    from attnseg.train.loop import make_augmentation

    assert isinstance(make_augmentation("endoscope", 0.4), EndoscopeAugmentation)
    assert make_augmentation("endoscope", 0.4).colour_prob == 0.0  # the recipe of earlier runs is unchanged
    colour = make_augmentation("endoscope-colour", 0.4)
    assert isinstance(colour, EndoscopeAugmentation) and colour.colour_prob == 0.5


def test_colour_response_changes_white_balance_and_saturation_only(pairs):
    image = pairs[0][0]
    shifted = [colour_response(image, np.random.default_rng(s)) for s in range(6)]
    assert all(s.shape == image.shape and s.dtype == np.uint8 for s in shifted)
    ratios = np.array([s.reshape(-1, 3).mean(0) / image.reshape(-1, 3).mean(0) for s in shifted])
    # the channels move apart (another white balance), not together (that is exposure)
    assert np.ptp(ratios, axis=1).max() > 0.1
    # the picture stays the same picture: structure kept (edges correlate strongly)
    edges = cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.CV_32F).ravel()
    for s in shifted:
        moved = cv2.Laplacian(cv2.cvtColor(s, cv2.COLOR_BGR2GRAY), cv2.CV_32F).ravel()
        assert np.corrcoef(edges, moved)[0, 1] > 0.8
    assert np.array_equal(colour_response(image, np.random.default_rng(3)), shifted[3])
