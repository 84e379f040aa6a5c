"""The metadata schema: every problem listed in one error, newer schemas refused, unknown keys
kept, schema-1 layouts (fields inside ``extra``) still load, checkpoints checked the same way."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from attnseg.errors import AttnsegError, MetadataError
from attnseg.metadata import SCHEMA_VERSION, ModelMetadata, read_rt_info
from attnseg.runtime import Segmenter

V1_JSON = Path(__file__).resolve().parents[1] / "fixtures" / "metadata_v1_attunet.json"


def test_schema_1_layout_written_by_attnseg_0_1_loads():
    """The fixture is the model.json that attnseg 0.1's exporter wrote (fields inside extra)."""
    raw = json.loads(V1_JSON.read_text())
    assert raw["schema_version"] == 1 and "input_divisor" in raw["extra"]
    meta = ModelMetadata.read_json(V1_JSON)
    assert meta.input_divisor == 16 and meta.input_color == "BGR" and meta.input_name == "image"
    assert meta.model_input_channels == 3 and meta.output_spec["channels"] == 1 == meta.output_channels
    assert meta.arch_kwargs == {"base_width": 4, "img_ch": 3, "output_ch": 1} and meta.opset == 18
    assert meta.resize_policy == "stretch"  # not in schema 1: the default
    assert meta.extra == {}  # every promoted key left extra
    again = ModelMetadata.from_dict(json.loads(meta.to_json()))
    assert again == meta and again.schema_version == SCHEMA_VERSION


def test_every_problem_is_listed_with_its_field():
    raw = json.loads(V1_JSON.read_text())
    raw.update(threshold=1.5, output="scores", task="segmentation", input_size="64x64", batch=0,
               normalization={"mean": [0.5, float("nan")], "std": [0.2, 0.0], "channel_order": "XYZ"})
    with pytest.raises(MetadataError) as info:
        ModelMetadata.from_dict(raw, "model.xml")
    text = str(info.value)
    for words in ("threshold: 1.5 is outside (0, 1)", "output: 'scores' is not one of logits, probabilities, mask",
                  "task: 'segmentation'", "input_size: expected a list", "batch: 0 is outside",
                  "normalization.mean[1]: must be a finite number", "normalization.std[1]: 0.0 is outside (0, inf)",
                  "normalization.channel_order: 'XYZ'"):
        assert words in text, words
    assert text.startswith("model.xml is not valid attnseg metadata") and "\n" not in text
    assert isinstance(info.value, AttnsegError) and info.value.http_status == 422


def test_channels_and_classes_must_agree():
    raw = json.loads(V1_JSON.read_text())
    bad_norm = {**raw, "normalization": {"mean": [0.5, 0.5], "std": [0.5, 0.5]}}
    with pytest.raises(MetadataError, match=r"mean/std: 2 values for a model with 3 input channel"):
        ModelMetadata.from_dict(bad_norm)
    with pytest.raises(MetadataError, match=r"classes: must not be null"):
        ModelMetadata.from_dict({**raw, "classes": None})
    multi = {**raw, "task": "multiclass", "classes": ["bg", "polyp"],
             "extra": {**raw["extra"], "output_spec": {**raw["extra"]["output_spec"], "channels": 3}}}
    with pytest.raises(MetadataError, match=r"classes: 2 class names for a model with 3 output channels"):
        ModelMetadata.from_dict(multi)
    with pytest.raises(MetadataError, match=r"threshold: expected a number, got str"):
        ModelMetadata.from_dict({**raw, "threshold": "0.5"})


def test_newer_schema_is_refused_naming_the_version_it_needs():
    raw = json.loads(V1_JSON.read_text())
    raw.update(schema_version=SCHEMA_VERSION + 1, toolkit_version="0.9.0")
    with pytest.raises(MetadataError, match=rf"schema_version {SCHEMA_VERSION + 1}.*attnseg >= 0\.9\.0"):
        ModelMetadata.from_dict(raw)


def test_unknown_keys_survive_a_round_trip():
    raw = json.loads(V1_JSON.read_text())
    raw["future_field"] = {"tiles": 4}
    meta = ModelMetadata.from_dict(raw)
    assert meta.unknown == {"future_field": {"tiles": 4}}
    assert json.loads(meta.to_json())["future_field"] == {"tiles": 4}


def _with_rt_info(src_xml: Path, out_xml: Path, payload: str) -> Path:
    import openvino as ov

    from attnseg.metadata import RT_INFO_KEY

    model = ov.Core().read_model(str(src_xml))
    model.set_rt_info(payload, [RT_INFO_KEY, "json"])
    out_xml.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, str(out_xml), compress_to_fp16=False)
    return out_xml


def _as_schema_1(meta: ModelMetadata) -> dict:
    """The layout attnseg 0.1 wrote: promoted fields inside extra, schema_version 1."""
    d = meta.to_dict()
    moved = {k: d.pop(k) for k in ("input_name", "input_color", "input_divisor", "model_input_channels",
                                   "output_spec", "arch_kwargs", "source", "onnx", "opset", "resize_policy")}
    d["extra"] = {**d["extra"], **{k: v for k, v in moved.items() if k != "resize_policy"}}
    d["schema_version"] = 1
    return d


def test_an_ir_with_schema_1_rt_info_segments_like_today(embedded_att_ir, kvasir_images, tmp_path):
    meta = ModelMetadata.read_json(embedded_att_ir.with_suffix(".json"))
    old = _with_rt_info(embedded_att_ir, tmp_path / "old" / "model.xml", json.dumps(_as_schema_1(meta)))
    assert read_rt_info(__import__("openvino").Core().read_model(str(old))).input_divisor == 16
    # two different files, so two auto-precision decisions: compare them at one precision
    a = Segmenter(old, inference_precision="f32").predict(kvasir_images[0])
    b = Segmenter(embedded_att_ir, inference_precision="f32").predict(kvasir_images[0])
    assert np.array_equal(a.mask, b.mask) and a.mask.any() and set(a.attention) == set(b.attention)


def test_corrupt_rt_info_is_one_clear_error_not_a_silent_mask(binary_ir, tmp_path):
    meta = ModelMetadata.read_json(binary_ir.with_suffix(".json")).to_dict()
    meta.update(output="score", threshold=math.inf)
    bad = _with_rt_info(binary_ir, tmp_path / "bad" / "model.xml", json.dumps(meta).replace("Infinity", "1e999"))
    with pytest.raises(MetadataError) as info:
        Segmenter(bad)
    assert "model.xml (rt_info) is not valid attnseg metadata" in str(info.value)
    assert "output: 'score'" in str(info.value) and "threshold: must be a finite number" in str(info.value)


def test_checkpoint_description_is_checked_on_load(tmp_path):
    pytest.importorskip("torch")
    from attnseg.models import create_model, load_checkpoint, save_checkpoint
    from attnseg.models.checkpoint import read_checkpoint_file

    model = create_model("AttU_Net", base_width=4)
    path = save_checkpoint(tmp_path / "ok.pt", model, classes=["polyp"], resize_policy="letterbox")
    assert load_checkpoint(path)[1].resize_policy == "letterbox"
    import torch

    raw = read_checkpoint_file(path)
    raw.update(threshold=2.0, classes=["a", "b", "c"], resize_policy="crop",
               normalization={"mean": [0.5], "std": [0.5, 0.5]})
    torch.save(raw, tmp_path / "bad.pt")
    with pytest.raises(MetadataError) as info:
        load_checkpoint(tmp_path / "bad.pt")
    text = str(info.value)
    for words in ("bad.pt", "threshold: 2.0 is outside (0, 1)", "classes: a single-output (binary) model",
                  "resize_policy: 'crop'", "normalization.mean/std: 1 means but 2 stds"):
        assert words in text, words
