"""Tile-scale crops on real Kvasir-SEG pairs at their own resolution: the window is the model's
input size (times the drawn scale) in the image's pixels, image and mask are cut together, the
wrapped augmentation still runs, and the training cache keeps the files' own resolution."""

from __future__ import annotations

import numpy as np
import pytest

from attnseg.data import load_pair, open_dataset
from attnseg.data.domain_shift import DomainShiftAugmentation
from attnseg.data.tile_crop import TileCropAugmentation
from attnseg.errors import DataError
from attnseg.imaging import resize_image, resize_mask


@pytest.fixture(scope="module")
def native_pairs(shared_data):
    info = open_dataset(f"kvasir:{shared_data / 'kvasir-seg'}")
    return [load_pair(s, "binary") for s in info.samples[:4]]


class _Resize:
    """The plain resize the dataset does without augmentation, as the wrapped augmentation."""

    prob = 1.0

    def __call__(self, image, mask, rng, fill=0, size=None, interpolation="linear"):
        return resize_image(image, size, interpolation), resize_mask(mask, size)


def test_window_is_the_input_size_in_the_image_own_pixels(native_pairs):
    aug = TileCropAugmentation(_Resize(), tile_prob=1.0, scale=(0.8, 1.25))
    rng = np.random.default_rng(0)
    image, _ = native_pairs[0]
    h, w = image.shape[:2]
    corners = []
    for _ in range(300):
        y, x, th, tw = aug.window((h, w), (256, 256), rng)
        assert 0.8 * 256 - 1 <= th <= 1.25 * 256 + 1 and 0.8 * 256 - 1 <= tw <= 1.25 * 256 + 1
        assert 0 <= y and y + th <= h and 0 <= x and x + tw <= w
        corners.append((y, x))
    ys, xs = np.array(corners).T
    assert ys.min() < 0.1 * h and ys.max() > 0.3 * h  # spread over the image, as the tiler's grid
    assert xs.min() < 0.1 * w and xs.max() > 0.4 * w
    y, x, th, tw = aug.window((100, 120), (256, 256), rng)  # never larger than the image
    assert (y, x, th, tw) == (0, 0, 100, 120)


def test_crop_cuts_image_and_mask_together_then_runs_the_wrapped_augmentation(native_pairs):
    aug = TileCropAugmentation(_Resize(), tile_prob=1.0)
    for i, (image, mask) in enumerate(native_pairs):
        out, out_mask = aug(image, mask, np.random.default_rng(i), size=(256, 256))
        replay = np.random.default_rng(i)
        replay.random()  # the draw that chose to crop
        y, x, th, tw = aug.window(image.shape[:2], (256, 256), replay)
        assert np.array_equal(out, resize_image(image[y:y + th, x:x + tw], (256, 256), "linear"))
        assert np.array_equal(out_mask, resize_mask(mask[y:y + th, x:x + tw], (256, 256)))


def test_crops_show_close_ups_and_empty_windows(native_pairs):
    """Polyps look larger than in the whole frame, and some windows hold no polyp at all."""
    aug = TileCropAugmentation(_Resize(), tile_prob=1.0)
    whole = np.mean([resize_mask(m, (256, 256)).mean() for _, m in native_pairs])
    shares, empty = [], 0
    for i in range(40):
        image, mask = native_pairs[i % len(native_pairs)]
        _, m = aug(image, mask, np.random.default_rng(i), size=(256, 256))
        assert m.shape == (256, 256) and set(np.unique(m)) <= {0, 1}
        shares.append(m.mean())
        empty += not m.any()
    assert max(shares) > 2 * whole
    assert 0 < empty < 40


def test_no_crop_without_chance_or_without_augmentation(native_pairs):
    image, mask = native_pairs[1]
    plain = DomainShiftAugmentation(prob=0.0)
    expected = plain(image, mask, np.random.default_rng(1), size=(256, 256))
    never = TileCropAugmentation(plain, tile_prob=0.0)(image, mask, np.random.default_rng(1), size=(256, 256))
    off = TileCropAugmentation(plain, tile_prob=1.0)(image, mask, np.random.default_rng(1), size=(256, 256))
    for got in (never, off):  # prob 0 of the wrapped augmentation switches the crops off too
        assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])


def test_bad_settings_are_refused():
    with pytest.raises(DataError, match="Tile-crop probability"):
        TileCropAugmentation(_Resize(), tile_prob=1.5)
    with pytest.raises(DataError, match="Tile-crop scale"):
        TileCropAugmentation(_Resize(), scale=(1.2, 0.8))


def test_training_wraps_the_named_augmentation_and_caches_native_resolution(shared_data):
    pytest.importorskip("albumentations")
    from attnseg.data.endoscope_shift import EndoscopeAugmentation
    from attnseg.train.cache import CachedSegmentationDataset
    from attnseg.train.loop import make_augmentation

    aug = make_augmentation("endoscope-colour", 0.5, 0.3)
    assert isinstance(aug, TileCropAugmentation) and aug.tile_prob == 0.3
    assert isinstance(aug.inner, EndoscopeAugmentation) and aug.inner.colour_prob == 0.5
    assert isinstance(make_augmentation("endoscope", 0.5), EndoscopeAugmentation)  # 0: unchanged recipe
    info = open_dataset(f"kvasir:{shared_data / 'kvasir-seg'}")
    samples = info.samples[:3]
    common = {"size": (64, 64), "normalization": info.normalization, "task": "binary"}
    native = CachedSegmentationDataset(samples, augment=aug, **common).preload()
    scaled = CachedSegmentationDataset(samples, augment=aug.inner, **common).preload()
    for i, sample in enumerate(samples):
        assert native._pair(i)[0].shape == load_pair(sample, "binary")[0].shape
        assert scaled._pair(i)[0].shape == (80, 80, 3)
        assert native[i][0].shape == (3, 64, 64)
