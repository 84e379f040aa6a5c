"""``ModelCodec``: one background rule, one mask encoding, one decision for merged probabilities,
and the same codec whether built from OpenVINO ports (Segmenter) or plain shapes (remote client)."""

from __future__ import annotations

import numpy as np
import pytest

from attnseg.errors import ModelConfigError
from attnseg.metadata import ModelMetadata
from attnseg.runtime import ModelCodec, Port, Segmenter
from attnseg.runtime.postprocess import background_index

LOGITS_1 = Port((1, 1, 64, 64), np.dtype(np.float32))
IMAGE = Port((1, 3, 64, 64), np.dtype(np.float32))


def _codec(**meta) -> ModelCodec:
    """A codec of a 64x64 model with one output channel per class (one for binary models)."""
    md = ModelMetadata(input_size=[64, 64], **meta)
    channels = md.num_classes if md.task == "multiclass" else 1
    return ModelCodec.from_metadata(md, IMAGE, Port((1, channels, 64, 64), np.dtype(np.float32)))


@pytest.mark.parametrize(("classes", "binary", "expected"), [
    (["background", "polyp"], True, 0),
    (["normal", "lesion"], True, 0),  # binary: 0 is "not the class" whatever it is called
    (["lesion", "BG"], True, 1),
    (["sky", "road", "car"], False, None),  # no class means background
    (["car", "_background_", "road"], False, 1),
])
def test_one_background_rule(classes, binary, expected):
    assert background_index(classes, binary) == expected


def test_binary_model_with_unusual_names_writes_0_255_and_counts_its_class():
    codec = _codec(task="binary", classes=["normal", "lesion"])
    assert codec.binary and codec.background == 0 and codec.classes == ["normal", "lesion"]
    mask = np.array([[0, 1], [1, 1]], dtype=np.uint8)
    assert codec.mask_picture(mask).tolist() == [[0, 255], [255, 255]]
    result = codec.result(mask)
    assert result.class_pixel_counts == {"normal": 1, "lesion": 3} and result.foreground_fraction == 0.75
    big = np.zeros((20, 20), np.uint8)
    big[10:, 10:] = 1
    picture = codec.overlay(np.full((20, 20, 3), 100, np.uint8), big, alpha=1.0)
    assert picture[0, 0].tolist() == [100, 100, 100]  # background keeps the image's colour
    assert picture[15, 15].tolist() != [100, 100, 100]


def test_multiclass_without_background_counts_every_pixel_as_foreground():
    codec = _codec(task="multiclass", classes=["sky", "road", "car"])
    assert not codec.binary and codec.background is None
    mask = np.array([[0, 1], [2, 2]], dtype=np.uint8)
    assert codec.mask_picture(mask).tolist() == mask.tolist()  # class ids, not 0/255
    assert codec.result(mask).foreground_fraction == 1.0


def test_merged_probabilities_are_decided_by_the_exported_threshold():
    ramp = np.linspace(0.05, 0.95, 9, dtype=np.float32)[None]
    probs = np.stack([1.0 - ramp, ramp])
    assert _codec(task="binary", classes=["polyp"], threshold=0.3).decide(probs).tolist() == [[0, 0, 0, 1, 1, 1, 1, 1, 1]]
    assert _codec(task="binary", classes=["polyp"]).decide(probs).tolist() == [[0, 0, 0, 0, 0, 1, 1, 1, 1]]
    three = np.stack([np.full((1, 2), 0.2), np.array([[0.5, 0.1]]), np.array([[0.3, 0.7]])]).astype(np.float32)
    assert _codec(task="multiclass", classes=["background", "a", "b"]).decide(three).tolist() == [[1, 2]]


def test_codec_from_plain_shapes_equals_the_segmenters(binary_ir, kvasir_images):
    """What RemoteSegmenter builds from v2 metadata (-1 = dynamic) decodes like Segmenter's own codec."""
    seg = Segmenter(binary_ir)
    meta = ModelMetadata.read_json(binary_ir.with_suffix(".json"))
    codec = ModelCodec.from_metadata(meta, Port.from_dims([1, 3, 64, 64], np.float32),
                                     Port.from_dims([-1, 2, 64, 64], "float32"))  # the binary pair head
    assert codec == seg.codec
    prep = codec.prepare(kvasir_images[0])
    raw = seg.infer(prep)
    a, b = codec.decode(prep, raw, True), seg.postprocess(prep, raw, True)
    assert np.array_equal(a.mask, b.mask) and np.array_equal(a.probabilities, b.probabilities)
    assert a.class_pixel_counts == b.class_pixel_counts and 0 < a.foreground_fraction < 1


def test_a_served_mask_codec_cannot_prepare_images():
    codec = ModelCodec.for_served_masks(["background", "polyp"], 0, binary=True)
    with pytest.raises(ModelConfigError, match="no image input"):
        codec.prepare(np.zeros((4, 4, 3), np.uint8))


def test_non_image_models_are_refused():
    with pytest.raises(ModelConfigError, match="pixel_classification"):
        ModelCodec.from_metadata(ModelMetadata(task="pixel_classification", classes=["a", "b"]), None, LOGITS_1)


@pytest.mark.parametrize(("recorded", "flag"), [("area", "INTER_AREA"), ("linear", "INTER_LINEAR")])
def test_codec_resizes_with_the_recorded_interpolation(recorded, flag, kvasir_images):
    import cv2

    from attnseg.imaging import read_image

    meta = ModelMetadata(input_size=[64, 64], preprocessing_embedded=True, input_layout="NHWC",
                         input_interpolation=recorded)
    codec = ModelCodec.from_metadata(meta, Port((1, 64, 64, 3), np.dtype(np.uint8)))
    bgr = read_image(kvasir_images[0])
    want = cv2.resize(bgr, (64, 64), interpolation=getattr(cv2, flag))
    assert np.array_equal(codec.tensor(bgr)[0], want)
    assert ModelMetadata.from_dict(meta.to_dict()).input_interpolation == recorded  # travels with the model
