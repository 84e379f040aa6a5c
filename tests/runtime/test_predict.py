"""Segmenter.predict: same masks as a direct OpenVINO compile, any input image flavour."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from attnseg.errors import InputFileError
from attnseg.imaging import read_image
from attnseg.runtime import Segmenter
from tests.runtime._reference import direct_logits, reference_mask


@pytest.fixture(scope="module")
def binary(binary_ir):
    return Segmenter(binary_ir)


@pytest.fixture(scope="module")
def embedded(embedded_att_ir):
    return Segmenter(embedded_att_ir)


@pytest.fixture(scope="module")
def multiclass(multiclass_ir):
    return Segmenter(multiclass_ir)


@pytest.mark.parametrize("which", ["binary_ir", "embedded_att_ir", "multiclass_ir"])
def test_masks_equal_direct_openvino_at_original_size(which, request, kvasir_images):
    xml = request.getfixturevalue(which)
    seg = Segmenter(xml)
    for path in kvasir_images[:3]:
        bgr = read_image(path)
        result = seg.predict(path)
        assert result.mask.shape == bgr.shape[:2]
        assert result.mask.dtype == np.uint8
        ref = reference_mask(xml, bgr, precision=seg.inference_precision)
        assert np.array_equal(result.mask, ref)
        assert 0.02 < (result.mask > 0).mean() < 0.98  # the test model gives non-trivial masks


def test_at_model_size_mask_is_thresholded_logits(binary, binary_ir, kvasir_images):
    bgr = cv2.resize(read_image(kvasir_images[0]), (64, 64), interpolation=cv2.INTER_AREA)
    logits = direct_logits(binary_ir, bgr, precision=binary.inference_precision)[-1]  # the foreground logit
    result = binary.predict(bgr, return_probabilities=True)
    assert np.array_equal(result.mask, (logits > 0).astype(np.uint8))
    expected = 1.0 / (1.0 + np.exp(-logits))
    np.testing.assert_allclose(result.probabilities[1], expected, rtol=1e-5, atol=1e-6)


def test_binary_result_fields(binary, kvasir_images):
    result = binary.predict(kvasir_images[1], return_probabilities=True)
    h, w = result.mask.shape
    assert result.classes == ["background", "polyp"] == binary.classes
    assert set(np.unique(result.mask)) <= {0, 1}
    assert result.class_pixel_counts == {
        "background": int((result.mask == 0).sum()), "polyp": int((result.mask == 1).sum())}
    assert result.foreground_fraction == pytest.approx((result.mask == 1).mean())
    assert result.probabilities.shape == (2, h, w) and result.probabilities.dtype == np.float32
    np.testing.assert_allclose(result.probabilities.sum(axis=0), 1.0, atol=1e-5)
    assert np.array_equal(result.mask, (result.probabilities[1] > 0.5).astype(np.uint8))
    assert result.source == str(kvasir_images[1])
    t = result.timings
    assert t.preprocess > 0 and t.infer > 0 and t.postprocess > 0
    assert t.total >= t.preprocess + t.infer + t.postprocess - 1e-6
    assert result.attention == {}
    assert binary.predict(kvasir_images[1]).probabilities is None


def test_multiclass_probabilities_and_counts(multiclass, kvasir_images):
    result = multiclass.predict(kvasir_images[2], return_probabilities=True)
    assert multiclass.classes == ["background", "polyp", "tool"]
    assert result.probabilities.shape == (3, *result.mask.shape)
    np.testing.assert_allclose(result.probabilities.sum(axis=0), 1.0, atol=1e-5)
    assert np.array_equal(result.mask, result.probabilities.argmax(axis=0))
    assert sum(result.class_pixel_counts.values()) == result.mask.size
    assert result.foreground_fraction == pytest.approx((result.mask != 0).mean())


def test_attention_maps_at_original_size(embedded, kvasir_images):
    bgr = read_image(kvasir_images[0])
    result = embedded.predict(bgr)
    assert embedded.attention_names == ["Att5", "Att4", "Att3", "Att2"]
    assert list(result.attention) == ["Att5", "Att4", "Att3", "Att2"]
    for amap in result.attention.values():
        assert amap.shape == bgr.shape[:2] and amap.dtype == np.float32
        assert 0.0 <= amap.min() and amap.max() <= 1.0
        assert amap.std() > 1e-4


def test_input_flavours_give_the_same_mask(embedded, kvasir_images):
    bgr = read_image(kvasir_images[3])
    base = embedded.predict(bgr).mask
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    rgba = np.dstack([bgr, np.full(bgr.shape[:2], 77, np.uint8)])
    assert np.array_equal(embedded.predict(rgba).mask, base)  # alpha ignored
    assert np.array_equal(embedded.predict(bgr.astype(np.uint16) * 257).mask, base)  # 16-bit
    assert np.array_equal(embedded.predict(kvasir_images[3]).mask, base)  # path == decoded array
    g2, g3 = embedded.predict(gray).mask, embedded.predict(gray[:, :, None]).mask
    assert g2.shape == bgr.shape[:2] and np.array_equal(g2, g3)
    assert np.array_equal(g2, embedded.predict(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)).mask)


@pytest.mark.parametrize("shape", [(1, 1, 3), (3, 2, 3), (37, 101, 3), (301, 17), (64, 64, 3), (513, 97, 4)])
def test_odd_sizes(binary, shape):
    rng = np.random.default_rng(sum(shape))
    img = rng.integers(0, 256, size=shape, dtype=np.uint8)
    result = binary.predict(img)
    assert result.mask.shape == shape[:2]
    assert sum(result.class_pixel_counts.values()) == shape[0] * shape[1]


@pytest.mark.parametrize("bad", [
    np.zeros((0, 0, 3), np.uint8), np.zeros((0, 7), np.uint8), np.zeros((5,), np.uint8),
    np.zeros((4, 4, 5), np.uint8), np.zeros((4, 4, 3), np.int32), [[1, 2], [3, 4]], None,
])
def test_bad_arrays_raise_one_clear_error(binary, bad):
    with pytest.raises(InputFileError):
        binary.predict(bad)


def test_bad_files_raise_one_clear_error(binary, tmp_path):
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg" * 10)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    for path, words in [(corrupt, "cannot be decoded"), (empty, "empty"),
                        (tmp_path / "missing.jpg", "does not exist"), (tmp_path, "folder")]:
        with pytest.raises(InputFileError, match=words) as info:
            binary.predict(path)
        assert "\n" not in str(info.value)


def test_dynamic_model_pads_and_crops(dynamic_ir, kvasir_images):
    seg = Segmenter(dynamic_ir)
    assert seg.input_size is None
    bgr = cv2.resize(read_image(kvasir_images[0]), (70, 50), interpolation=cv2.INTER_AREA)
    result = seg.predict(bgr)
    assert result.mask.shape == (50, 70)
    padded = cv2.copyMakeBorder(bgr, 0, 14, 0, 10, cv2.BORDER_REPLICATE)  # -> 64 x 80
    logits = direct_logits(dynamic_ir, padded, precision=seg.inference_precision)
    assert logits.shape[-2:] == (64, 80)
    assert np.array_equal(result.mask, (logits[-1, :50, :70] > 0).astype(np.uint8))
    exact = cv2.resize(bgr, (96, 48))
    exact_logits = direct_logits(dynamic_ir, exact, precision=seg.inference_precision)
    assert np.array_equal(seg.predict(exact).mask, (exact_logits[-1] > 0).astype(np.uint8))


def test_mask_output_ir(mask_ir, embedded_att_ir, kvasir_images):
    """IRs that output the mask: nearest-neighbour back to the image; same mask at model size."""
    seg, logits_seg = Segmenter(mask_ir), Segmenter(embedded_att_ir)
    small = cv2.resize(read_image(kvasir_images[0]), (64, 64), interpolation=cv2.INTER_AREA)
    assert np.array_equal(seg.predict(small).mask, logits_seg.predict(small).mask)
    bgr = read_image(kvasir_images[0])
    result = seg.predict(bgr, return_probabilities=True)
    assert result.probabilities is None  # the IR has none to give
    expected = cv2.resize(seg.predict(cv2.resize(bgr, (64, 64), interpolation=cv2.INTER_AREA)).mask,
                          (bgr.shape[1], bgr.shape[0]), interpolation=cv2.INTER_NEAREST)
    assert np.array_equal(result.mask, expected)
    assert (result.mask == logits_seg.predict(bgr).mask).mean() > 0.75  # nearest vs bilinear edges
    assert list(result.attention) == ["Att5", "Att4", "Att3", "Att2"]


def test_probabilities_output_ir(probabilities_ir, multiclass_ir, kvasir_images):
    seg, logits_seg = Segmenter(probabilities_ir), Segmenter(multiclass_ir)
    small = cv2.resize(read_image(kvasir_images[1]), (64, 64), interpolation=cv2.INTER_AREA)
    a, b = seg.predict(small, return_probabilities=True), logits_seg.predict(small, return_probabilities=True)
    assert np.array_equal(a.mask, b.mask)
    np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-5)
    big = seg.predict(kvasir_images[1], return_probabilities=True)
    np.testing.assert_allclose(big.probabilities.sum(axis=0), 1.0, atol=1e-4)
    assert (big.mask == logits_seg.predict(kvasir_images[1]).mask).mean() > 0.95


@pytest.mark.parametrize("which", ["binary_ir", "embedded_att_ir", "multiclass_ir", "dynamic_ir", "probabilities_ir"])
def test_results_own_their_arrays(which, request, kvasir_images):
    """predict() decodes straight from the request's output buffers; what it returns must not be
    a view of them (the next inference on the same request would rewrite an earlier result).
    At the model size nothing is resized, the case where a view could slip through."""
    seg = Segmenter(request.getfixturevalue(which))
    size = seg.input_size or (64, 96)
    first, second = (cv2.resize(read_image(p), size[::-1], interpolation=cv2.INTER_AREA) for p in kvasir_images[:2])
    kept = seg.predict(first, return_probabilities=True)
    snapshot = {"mask": kept.mask.copy(), "probabilities": kept.probabilities.copy(),
                **{f"attention {k}": v.copy() for k, v in kept.attention.items()}}
    assert snapshot["probabilities"].shape[-2:] == tuple(size)
    other = seg.predict(second, return_probabilities=True)
    assert not np.array_equal(other.probabilities, snapshot["probabilities"])  # the request was reused
    assert np.array_equal(kept.mask, snapshot["mask"])
    assert np.array_equal(kept.probabilities, snapshot["probabilities"])
    for k, v in kept.attention.items():
        assert np.array_equal(v, snapshot[f"attention {k}"])
    for arr in (kept.mask, kept.probabilities, *kept.attention.values()):
        assert arr.base is None or arr.base.flags.owndata


@pytest.mark.parametrize("values", [(0,), (1,), (0, 1), (0, 1, 2), (0, 3)])
def test_class_counts_equal_bincount(values):
    """The binary fast path (count_nonzero) and the general one count like np.bincount,
    including values a binary model should not produce (they get their own class_N)."""
    from attnseg.runtime.postprocess import OutputSpec, class_stats

    spec = OutputSpec(kind="logits", channels=1, threshold=0.5, classes=("background", "polyp"), background=0)
    rng = np.random.default_rng(len(values))
    mask = rng.choice(np.array(values, dtype=np.uint8), size=(37, 53))
    counts, fg = class_stats(mask, spec)
    expected = np.bincount(mask.ravel(), minlength=2)
    names = ["background", "polyp"] + [f"class_{i}" for i in range(2, len(expected))]
    assert counts == {n: int(c) for n, c in zip(names, expected)}
    assert fg == pytest.approx(1.0 - expected[0] / mask.size)
