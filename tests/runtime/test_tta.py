"""``Segmenter(..., tta="flip")``: the image and its mirror, averaged in probability space, then
decided by the exported threshold (through the codec)."""

from __future__ import annotations

import numpy as np
import pytest

from attnseg.errors import InvalidOptionError
from attnseg.imaging import read_image
from attnseg.runtime import Segmenter


def test_flip_averages_probabilities_then_applies_the_exported_threshold(threshold_ir, kvasir_images):
    plain = Segmenter(threshold_ir, inference_precision="f32")
    tta = Segmenter(threshold_ir, inference_precision="f32", tta="flip")
    assert tta.tta.value == "flip" and plain.tta.value == "none"
    for path in kvasir_images[:2]:
        bgr = read_image(path)
        p_image = plain.predict(bgr, return_probabilities=True).probabilities
        p_mirror = plain.predict(np.ascontiguousarray(bgr[:, ::-1]), return_probabilities=True).probabilities
        mean = (p_image + p_mirror[:, :, ::-1]) / 2
        got = tta.predict(bgr, return_probabilities=True)
        np.testing.assert_allclose(got.probabilities, mean, atol=1e-4)
        want = (mean[1] > 0.3).astype(np.uint8)  # the IR's exported threshold, not 0.5
        assert (got.mask == want).mean() > 0.999
        assert np.array_equal(got.mask, (got.probabilities[1] > 0.3).astype(np.uint8))
        assert (got.mask != plain.predict(bgr).mask).any()  # the mirror pass changes something
        assert 0.1 < got.foreground_fraction < 0.9


def test_flip_is_mirror_symmetric_and_stream_equals_predict(letterbox_ir, kvasir_images):
    seg = Segmenter(letterbox_ir, inference_precision="f32", tta="flip")
    bgr = read_image(kvasir_images[1])
    a, b = seg.predict(bgr).mask, seg.predict(np.ascontiguousarray(bgr[:, ::-1])).mask
    assert (a == b[:, ::-1]).mean() > 0.995
    streamed = list(seg.stream([(p.name, p) for p in kvasir_images[:3]]))
    assert [r.source for r in streamed] == [p.name for p in kvasir_images[:3]]
    for r, p in zip(streamed, kvasir_images[:3]):
        assert np.array_equal(r.mask, seg.predict(p).mask)


def test_unknown_tta_is_refused(binary_ir):
    with pytest.raises(InvalidOptionError, match="flip"):
        Segmenter(binary_ir, tta="rotate")


def test_flip4_averages_four_flips(threshold_ir, kvasir_images):
    """flip4: the image, left-right, upside down and both, averaged, then the exported threshold."""
    plain = Segmenter(threshold_ir, inference_precision="f32")
    tta = Segmenter(threshold_ir, inference_precision="f32", tta="flip4")
    bgr = read_image(kvasir_images[0])
    total = 0
    for rows, cols in ((False, False), (False, True), (True, False), (True, True)):
        img = bgr[::-1 if rows else 1, ::-1 if cols else 1]
        p = plain.predict(np.ascontiguousarray(img), return_probabilities=True).probabilities
        total = total + p[:, ::-1 if rows else 1, ::-1 if cols else 1]
    mean = total / 4
    got = tta.predict(bgr, return_probabilities=True)
    np.testing.assert_allclose(got.probabilities, mean, atol=1e-4)
    assert (got.mask == (mean[1] > 0.3)).mean() > 0.999
    flipped_input = np.ascontiguousarray(bgr[::-1, ::-1])
    assert (tta.predict(flipped_input).mask[::-1, ::-1] == got.mask).mean() > 0.995  # symmetric by design
