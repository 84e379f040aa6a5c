"""Overlays: palette, blending only where there is a class, contours, attention heatmaps."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from attnseg.errors import InputFileError
from attnseg.runtime import overlay


def test_palette_is_distinct_with_black_background():
    for n in (2, 3, 16, 40):
        pal = overlay.palette(n)
        assert pal.shape == (n, 3) and pal.dtype == np.uint8
        assert tuple(pal[0]) == (0, 0, 0)
        assert len({tuple(c) for c in pal}) == n
    assert tuple(overlay.palette(3, background=None)[0]) != (0, 0, 0)


def test_blend_changes_only_class_pixels():
    img = np.full((40, 50, 3), 100, np.uint8)
    mask = np.zeros((40, 50), np.uint8)
    mask[10:20, 10:30] = 1
    mask[25:35, 5:15] = 2
    out = overlay.blend(img, mask, alpha=0.5)
    assert np.array_equal(out[mask == 0], img[mask == 0])
    pal = overlay.palette(3)
    expected = np.round(0.5 * 100 + 0.5 * pal[2].astype(float))
    assert np.abs(out[30, 10].astype(float) - expected).max() <= 1
    assert not np.array_equal(out[15, 15], out[30, 10])


def test_overlay_draws_contours_and_heatmap():
    img = np.zeros((60, 60, 3), np.uint8)
    mask = np.zeros((60, 60), np.uint8)
    cv2.circle(mask, (30, 30), 15, 1, -1)
    with_c = overlay.overlay(img, mask, alpha=0.0, contours=True)
    without = overlay.overlay(img, mask, alpha=0.0, contours=False)
    assert not without.any()  # alpha 0 and no contours: the image is unchanged
    edge = with_c.any(axis=2)
    assert edge[30, 15] and not edge[30, 30] and not edge[2, 2]  # outline only
    att = np.tile(np.linspace(0, 1, 60, dtype=np.float32), (60, 1))
    heat = overlay.heatmap(att)
    assert heat.shape == (60, 60, 3)
    assert np.array_equal(heat[0, -1], cv2.applyColorMap(np.array([[255]], np.uint8), cv2.COLORMAP_JET)[0, 0])
    blended = overlay.heatmap(att, np.full((60, 60, 3), 50, np.uint8), alpha=0.5)
    assert blended.shape == (60, 60, 3)
    with pytest.raises(InputFileError):
        overlay.heatmap(att, np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(InputFileError):
        overlay.blend(img, np.zeros((5, 5), np.uint8))


def test_mask_png_values():
    mask = np.array([[0, 1], [1, 0]], np.uint8)
    assert overlay.mask_to_png(mask, binary=True).tolist() == [[0, 255], [255, 0]]
    assert overlay.mask_to_png(mask * 3, binary=False).tolist() == [[0, 3], [3, 0]]
    assert overlay.colorize(mask).shape == (2, 2, 3)
