"""Resize policies: the shared geometry, letterbox in the runtime on real images (padding never
becomes foreground), and the recorded policy from checkpoint to metadata to Segmenter and seg-infer."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from attnseg.errors import InputFileError, InvalidOptionError, MetadataError, ModelConfigError
from attnseg.imaging import normalize, read_image
from attnseg.metadata import RESIZE_POLICIES, ModelMetadata, Normalization
from attnseg.resize_policy import (
    ResizePolicy,
    fit,
    letterbox_image,
    letterbox_pair,
    pad_color,
    place_image,
    unplace_map,
)
from attnseg.runtime import Segmenter


def wide(image: np.ndarray, copies: int = 3) -> np.ndarray:
    """A real image much wider than tall: the image side by side with itself."""
    return np.ascontiguousarray(np.concatenate([image] * copies, axis=1))


# ---------------------------------------------------------------------- geometry
@pytest.mark.parametrize("size", [(530, 1866), (1866, 530), (256, 256), (1, 999), (999, 1), (37, 41)])
def test_letterbox_keeps_aspect_centres_and_never_lets_padding_back(size):
    h, w = size
    p = fit(size, (256, 256), "letterbox")
    assert max(p.height, p.width) == 256  # fills the input along the longer side
    scale = 256 / max(h, w)  # one scale for both axes: the aspect ratio is kept to the pixel
    assert abs(p.height - h * scale) <= 0.5 + 1e-9 or p.height == 1
    assert abs(p.width - w * scale) <= 0.5 + 1e-9 or p.width == 1
    assert p.top == (256 - p.height) // 2 and p.left == (256 - p.width) // 2
    # A map that is 1 on image content and 0 on padding comes back all ones at the image size.
    content = p.content_mask().astype(np.float32)
    assert content.sum() == p.height * p.width
    back = unplace_map(content, p)
    assert back.shape == (h, w) and back.min() == 1.0
    back_nn = unplace_map(content[None], p, interpolation="nearest")
    assert back_nn.shape == (1, h, w) and back_nn.min() == 1.0
    # ... and from a lower output resolution than the input (maps at 1/2 and 1/3 scale).
    for k in (128, 85):
        small = cv2.resize(content, (k, k), interpolation=cv2.INTER_AREA)
        assert unplace_map(small, p).min() > (0.99 if min(p.height, p.width) > 3 else 0.0)


def test_round_trip_on_a_real_image_returns_the_image(kvasir_images):
    img = read_image(kvasir_images[0])
    img = wide(img, 2)
    pad = (1, 2, 3)
    boxed, p = letterbox_image(img, (256, 256), pad)
    assert boxed.shape == (256, 256, 3) and p.padded
    assert (boxed[~p.content_mask()] == pad).all()
    back = unplace_map(boxed.transpose(2, 0, 1).astype(np.float32), p).transpose(1, 2, 0)
    small = cv2.resize(cv2.resize(img, (p.width, p.height), interpolation=cv2.INTER_AREA),
                       (img.shape[1], img.shape[0]), interpolation=cv2.INTER_LINEAR)
    assert back.shape == img.shape
    np.testing.assert_allclose(back, small, atol=1.0)  # exactly the content, no pad colour mixed in


def test_letterbox_pair_pads_image_and_mask_alike(shared_data):
    first = min((shared_data / "kvasir-seg" / "images").glob("*.jpg"))
    img, stem = read_image(first), first.stem
    mask = (cv2.imread(str(shared_data / "kvasir-seg" / "masks" / f"{stem}.jpg"), cv2.IMREAD_GRAYSCALE) > 127)
    mask = mask.astype(np.uint8)
    img, mask = wide(img), wide(mask)
    out_img, out_mask = letterbox_pair(img, mask, (192, 256), pad_value=(104, 116, 124), mask_fill=255)
    p = fit(img.shape[:2], (192, 256), "letterbox")
    assert out_img.shape == (192, 256, 3) and out_mask.shape == (192, 256) and out_mask.dtype == np.uint8
    pad = ~p.content_mask()
    assert (out_mask[pad] == 255).all() and (out_img[pad] == (104, 116, 124)).all()
    assert set(np.unique(out_mask[~pad])) == {0, 1}  # nearest: labels stay labels
    fg = out_mask[~pad].mean()
    assert fg == pytest.approx(mask.mean(), abs=0.02)
    with pytest.raises(ModelConfigError, match="differ in size"):
        letterbox_pair(img, mask[:-1], (192, 256))


def test_pad_colour_normalizes_to_zero():
    norm = Normalization()
    color = pad_color(norm)
    assert color == (104, 116, 124)  # ImageNet mean, BGR
    x = normalize(np.full((4, 4, 3), color, dtype=np.uint8), norm)
    assert np.abs(x).max() < 0.01
    assert pad_color(Normalization(mean=(0.5,), std=(0.5,), channel_order="GRAY")) == (128, 128, 128)


def test_stretch_placement_is_the_plain_resize(kvasir_images):
    img = read_image(kvasir_images[1])
    p = fit(img.shape[:2], (64, 64), "stretch")
    assert not p.padded
    np.testing.assert_array_equal(place_image(img, p), cv2.resize(img, (64, 64), interpolation=cv2.INTER_AREA))


def test_policy_vocabulary_is_one_list():
    assert tuple(p.value for p in ResizePolicy) == RESIZE_POLICIES
    with pytest.raises(InvalidOptionError, match="stretch, letterbox"):
        ResizePolicy.parse("crop")


# ---------------------------------------------------------------------- metadata contract
def test_metadata_round_trip_and_default(tmp_path):
    meta = ModelMetadata(resize_policy="letterbox")
    assert ModelMetadata.from_json(meta.to_json()).resize_policy == "letterbox"
    old = meta.to_dict()
    del old["resize_policy"]  # exported before the field existed
    assert ModelMetadata.from_dict(old).resize_policy == "stretch"
    bad = tmp_path / "model.json"
    bad.write_text(json.dumps({**old, "resize_policy": "crop"}))
    with pytest.raises(InputFileError, match="resize_policy"):
        ModelMetadata.read_json(bad)


def test_checkpoint_records_the_policy_and_export_source_carries_it(tmp_path):
    pytest.importorskip("torch")
    from attnseg.export.source import resolve_source
    from attnseg.models import load_checkpoint, save_checkpoint
    from attnseg.zoo import default_checkpoint
    from tests.runtime._irs import make_net

    net = make_net()
    path = save_checkpoint(tmp_path / "lb.pt", net, input_size=(64, 64), resize_policy="letterbox")
    assert load_checkpoint(path)[1].resize_policy == "letterbox"
    assert resolve_source(path).resize_policy == "letterbox"
    # Checkpoints saved before the key existed were trained with stretch.
    assert load_checkpoint(default_checkpoint())[1].resize_policy == "stretch"
    assert resolve_source(default_checkpoint()).resize_policy == "stretch"
    with pytest.raises(InvalidOptionError):
        save_checkpoint(tmp_path / "bad.pt", net, resize_policy="crop")
    import torch

    raw = torch.load(path, weights_only=True)
    raw["resize_policy"] = "zoom"
    torch.save(raw, tmp_path / "zoom.pt")
    with pytest.raises(MetadataError, match="resize_policy"):
        load_checkpoint(tmp_path / "zoom.pt")


def test_segmenter_uses_the_recorded_policy_unless_told_otherwise(shipped_ir, shipped_letterbox_ir):
    assert Segmenter(shipped_ir).resize_policy is ResizePolicy.STRETCH
    seg = Segmenter(shipped_letterbox_ir)
    assert seg.metadata.resize_policy == "letterbox" and seg.resize_policy is ResizePolicy.LETTERBOX
    assert Segmenter(shipped_letterbox_ir, resize_policy="stretch").resize_policy is ResizePolicy.STRETCH
    with pytest.raises(InvalidOptionError, match="resize policy"):
        Segmenter(shipped_ir, resize_policy="zoom")


# ---------------------------------------------------------------------- letterbox in the runtime
def _raw(seg: Segmenter, tensor: np.ndarray) -> list[np.ndarray]:
    request = seg.compiled_model.create_infer_request()
    request.infer({0: tensor})
    return [np.array(request.get_output_tensor(i).data, copy=True) for i in range(len(seg.compiled_model.outputs))]


def test_padding_never_counts_as_foreground_on_a_wide_real_image(shipped_letterbox_ir, kvasir_images):
    seg = Segmenter(shipped_letterbox_ir, inference_precision="f32")
    img = wide(read_image(kvasir_images[0]))
    prep = seg.preprocess(img)
    p = prep.placement
    assert p.padded and p.width == 256 and p.height < 100
    pad = ~p.content_mask()
    fed = prep.tensor[0]  # embedded preprocessing: u8 NHWC BGR
    assert (fed[pad] == pad_color(seg.metadata.normalization)).all()

    (logits,) = _raw(seg, prep.tensor)
    assert (logits[0, 0][pad] < 0).mean() > 0.5  # the model reads the mean-colour pad as background
    fg_pad, bg_pad = logits.copy(), logits.copy()
    fg_pad[0, 0][pad], bg_pad[0, 0][pad] = 50.0, -50.0  # a model that fires on padding, and one that does not
    hot = seg.postprocess(prep, [fg_pad], return_probabilities=True)
    cold = seg.postprocess(prep, [bg_pad], return_probabilities=True)
    assert hot.mask.shape == img.shape[:2]
    np.testing.assert_array_equal(hot.mask, cold.mask)
    np.testing.assert_array_equal(hot.probabilities, cold.probabilities)
    assert hot.class_pixel_counts == cold.class_pixel_counts

    # predict() is exactly that: the content box of the logits, resized to the image.
    got = seg.predict(img, return_probabilities=True)
    want = unplace_map(logits[0, 0], p) > 0
    np.testing.assert_array_equal(got.mask, want.astype(np.uint8))
    assert 0.01 < got.foreground_fraction < 0.9  # a real polyp found, not an empty or full mask


def test_mask_head_letterbox_crops_padding(mask_ir, kvasir_images):
    seg = Segmenter(mask_ir, resize_policy="letterbox", inference_precision="f32")
    img = read_image(kvasir_images[2])[:120]  # a real strip, 120 rows high
    prep = seg.preprocess(img)
    outs = _raw(seg, prep.tensor)
    pad = ~prep.placement.content_mask()
    outs[0][0][pad] = 1
    hot = seg.postprocess(prep, outs)
    outs[0][0][pad] = 0
    cold = seg.postprocess(prep, outs)
    np.testing.assert_array_equal(hot.mask, cold.mask)
    assert hot.mask.shape == img.shape[:2]
    assert all(a.shape == img.shape[:2] for a in hot.attention.values())


def test_letterbox_equals_stretch_when_the_aspect_matches(shipped_ir, kvasir_images):
    img = cv2.resize(read_image(kvasir_images[3]), (512, 512), interpolation=cv2.INTER_AREA)
    a = Segmenter(shipped_ir, resize_policy="letterbox").predict(img, return_probabilities=True)
    b = Segmenter(shipped_ir, resize_policy="stretch").predict(img, return_probabilities=True)
    np.testing.assert_array_equal(a.mask, b.mask)
    np.testing.assert_array_equal(a.probabilities, b.probabilities)


def test_seg_infer_uses_the_recorded_policy_by_default(shipped_letterbox_ir, kvasir_images, tmp_path, capsys):
    from attnseg.cli.infer import main

    src = tmp_path / "wide.png"
    img = wide(read_image(kvasir_images[0]))
    cv2.imwrite(str(src), img)
    masks = {}
    for name, flags in (("default", []), ("stretch", ["--resize-policy", "stretch"])):
        out = tmp_path / name
        assert main([str(shipped_letterbox_ir), str(src), "-o", str(out), "--no-overlays", "--json",
                     "--inference-precision", "f32", *flags]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["resize_policy"] == ("letterbox" if name == "default" else "stretch")
        masks[name] = cv2.imread(str(out / "masks" / "wide.png"), cv2.IMREAD_UNCHANGED)
    want = Segmenter(shipped_letterbox_ir, inference_precision="f32").predict(img).mask
    np.testing.assert_array_equal(masks["default"] == 255, want == 1)
    assert (masks["default"] != masks["stretch"]).mean() > 0.001  # the policy changed what was run
    with pytest.raises(SystemExit) as exc:
        main([str(shipped_letterbox_ir), str(src), "-o", str(tmp_path / "x"), "--resize-policy", "zoom"])
    assert exc.value.code == 2 and "zoom" in capsys.readouterr().err
