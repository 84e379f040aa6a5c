"""OpenVINO Model API reads attnseg IRs with no configuration, and agrees with the Segmenter.

Fast tests use the tiny IRs of ``tests/runtime/_irs.py`` (export's own graph steps) with the
``model_info`` export writes; the slow ones export the shipped model and a CamVid-shaped
multiclass model end to end and compare masks on real images.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("model_api")
import cv2
import openvino as ov
from model_api.models import SegmentationModel

from attnseg.export.model_api import compatibility, mask_labels, model_info, read_model_info, write_model_info
from attnseg.metadata import ModelMetadata, Normalization, read_rt_info, write_rt_info
from attnseg.runtime import Segmenter
from tests.runtime import _irs

REPO = Path(__file__).resolve().parents[2]
KVASIR = REPO.parent / "shared" / "data" / "kvasir-seg"
CAMVID = REPO.parent / "shared" / "data" / "camvid"


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    d = int(a.sum()) + int(b.sum())
    return 1.0 if d == 0 else 2.0 * float((a & b).sum()) / d


def _with_model_info(xml: Path) -> Path:
    """Add the model_info export writes to a tiny IR from ``_irs`` (same graph steps as export)."""
    model = ov.Core().read_model(str(xml))
    meta = read_rt_info(model)
    write_model_info(model, meta)
    write_rt_info(model, meta)
    out = xml.with_name(xml.stem + "_mi.xml")
    ov.save_model(model, str(out), compress_to_fp16=False)
    meta.write_json(out.with_suffix(".json"))
    return out


def f32_model_api(xml: Path) -> SegmentationModel:
    """Model API computing in f32 like ``Segmenter(..., inference_precision="f32")``: the tiny random
    networks have logits near 0 everywhere, where the CPU's default bf16 flips pixels. (An adapter,
    because ``create_model(core=...)`` in Model API 0.4.7 leaves its plugin config unset.)"""
    from model_api.adapters import OpenvinoAdapter, create_core

    adapter = OpenvinoAdapter(create_core(), str(xml), device="CPU",
                              plugin_config={"INFERENCE_PRECISION_HINT": "f32"})
    return SegmentationModel.create_model(adapter)


@pytest.fixture(scope="module")
def base():
    return _irs.base_model()


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    """Real Kvasir-SEG frames (several sizes: both resize directions happen)."""
    paths = sorted((KVASIR / "images").glob("*.jpg"))[:4]
    assert paths, f"Kvasir-SEG images missing under {KVASIR}"
    return [cv2.imread(str(p)) for p in paths]


# ------------------------------------------------------------------ the mapping itself


def test_model_info_for_embedded_and_raw_inputs():
    meta = ModelMetadata(task="binary", classes=["polyp"], input_size=[256, 256], preprocessing_embedded=True)
    info = model_info(meta)
    assert info["model_type"] == "Segmentation" and info["labels"] == "background polyp"
    # the IR normalizes itself: Model API must only resize
    assert (info["mean_values"], info["scale_values"], info["reverse_input_channels"]) == ("", "", "False")
    assert info["embedded_processing"] == "False" and info["resize_type"] == "standard"
    assert (info["orig_height"], info["orig_width"]) == ("256", "256")

    raw = ModelMetadata(task="multiclass", classes=["Sky", "Sign Symbol"], preprocessing_embedded=False,
                        normalization=Normalization())
    info = model_info(raw)
    assert info["labels"] == "Sky Sign_Symbol"  # Model API splits labels on whitespace
    assert [float(v) for v in info["mean_values"].split()] == pytest.approx([123.675, 116.28, 103.53])
    assert [float(v) for v in info["scale_values"].split()] == pytest.approx([58.395, 57.12, 57.375])
    assert info["reverse_input_channels"] == "True"
    bgr = ModelMetadata(normalization=Normalization(channel_order="BGR"))
    assert model_info(bgr)["reverse_input_channels"] == "False"
    assert mask_labels(ModelMetadata(task="binary", classes=["background", "polyp"])) == ["background", "polyp"]


@pytest.mark.parametrize("embedded", [True, False])
@pytest.mark.parametrize("output", ["logits", "probabilities"])
def test_binary_tiny_ir_reads_the_same_in_model_api(base, tmp_path, images, embedded, output):
    """Every binary head and both input kinds: Model API's masks equal the Segmenter's on the
    pixels neither resize policy can move (images already at the model size)."""
    xml = _with_model_info(_irs.derive(base, tmp_path / "m.xml", embedded=embedded, output=output))
    api = f32_model_api(xml)
    assert api.params.labels == ["background", "polyp"]
    seg = Segmenter(xml, inference_precision="f32")
    for img in images:
        fed = cv2.resize(img, (_irs.SIZE[1], _irs.SIZE[0]), interpolation=cv2.INTER_AREA)
        a, b = np.asarray(api(fed).resultImage), seg.predict(fed).mask
        assert a.shape == b.shape == fed.shape[:2]
        assert 0.05 < b.mean() < 0.95  # not a constant mask
        assert (a == b).mean() >= 0.999


def test_multiclass_tiny_ir_reads_the_same_in_model_api(base, tmp_path, images):
    xml = _with_model_info(_irs.derive(base, tmp_path / "m.xml", classes=("a", "b", "c"), embedded=True))
    api = f32_model_api(xml)
    assert api.params.labels == ["a", "b", "c"]
    seg = Segmenter(xml, inference_precision="f32")
    seen = set()
    for img in images:
        fed = cv2.resize(img, (_irs.SIZE[1], _irs.SIZE[0]), interpolation=cv2.INTER_AREA)
        a, b = np.asarray(api(fed).resultImage), seg.predict(fed).mask
        seen |= {int(v) for v in np.unique(b)}
        assert (a == b).mean() >= 0.999
    assert len(seen) >= 2  # not a constant map (class 2 needs logits the real frames do not reach)


def test_attention_map_exports_are_declared_incompatible(base, tmp_path):
    xml = _with_model_info(_irs.derive(base, tmp_path / "m.xml", attention=True, embedded=True))
    model = ov.Core().read_model(str(xml))
    verdict = read_rt_info(model).model_api
    assert verdict["compatible"] is False and "feature_vector" in verdict["reason"]
    assert read_model_info(model)["model_type"] == "Segmentation"  # labels etc. still there for others
    with pytest.raises(Exception, match="output"):
        SegmentationModel.create_model(str(xml), device="CPU")


def test_mask_exports_are_declared_incompatible(base, tmp_path, images):
    """Model API 0.4.x cannot post-process an arg-maxed map (np.argmax(axis=2) of a 2-D array)."""
    xml = _with_model_info(_irs.derive(base, tmp_path / "m.xml", embedded=True, output="mask"))
    verdict = read_rt_info(ov.Core().read_model(str(xml))).model_api
    assert verdict["compatible"] is False and "--output-kind logits or probabilities" in verdict["reason"]
    with pytest.raises(np.exceptions.AxisError):
        SegmentationModel.create_model(str(xml), device="CPU")(images[0])


def test_dynamic_and_old_binary_irs(base, tmp_path):
    dyn = _with_model_info(_irs.derive(base, tmp_path / "d.xml", embedded=True, dynamic=True))
    verdict = read_rt_info(ov.Core().read_model(str(dyn))).model_api
    assert verdict["compatible"] is True and "multiples of 16" in verdict["reason"]
    boxed = _with_model_info(_irs.derive(base, tmp_path / "l.xml", embedded=True, resize_policy="letterbox"))
    model = ov.Core().read_model(str(boxed))
    assert read_rt_info(model).model_api["compatible"] is False
    assert read_model_info(model)["resize_type"] == "fit_to_window_letterbox"
    # an IR with the one-channel binary output written before this change
    old = base.clone()
    old = ov.Model([old.output("logits").get_node()], old.get_parameters(), "old")
    meta = ModelMetadata(task="binary", classes=["polyp"], input_size=list(_irs.SIZE))
    verdict = compatibility(meta, old)
    assert verdict.compatible is False and "one channel" in verdict.reason


def test_ir_exported_before_the_pair_still_runs_in_segmenter(base, tmp_path, images):
    """Old binary IRs (one logit channel) and new ones (the pair) give the same mask and probabilities."""
    new_xml = _irs.derive(base, tmp_path / "new.xml")
    old = ov.Model([base.output("logits").get_node()], base.get_parameters(), "old")
    meta = ModelMetadata.read_json(new_xml.with_suffix(".json"))
    old_xml = _irs.save(old, meta, tmp_path / "old.xml")
    assert ov.Core().read_model(str(old_xml)).output(0).get_partial_shape()[1].get_length() == 1
    assert ov.Core().read_model(str(new_xml)).output(0).get_partial_shape()[1].get_length() == 2
    a, b = Segmenter(old_xml, inference_precision="f32"), Segmenter(new_xml, inference_precision="f32")
    for img in images[:2]:
        ra, rb = a.predict(img, return_probabilities=True), b.predict(img, return_probabilities=True)
        assert (ra.mask == rb.mask).mean() >= 0.9999
        np.testing.assert_allclose(ra.probabilities, rb.probabilities, atol=1e-5)


# ------------------------------------------------------------------ end to end, real exports (slow)


def _kvasir_test_images(n: int) -> list[tuple[Path, Path]]:
    names = json.loads((REPO / "splits" / "kvasir-seg.json").read_text())["splits"]["test"][:n]
    return [(KVASIR / "images" / f"{k}.jpg", KVASIR / "masks" / f"{k}.jpg") for k in names]


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """The shipped model exported as the main job does (FP32, embedded preprocessing) and its INT8."""
    from attnseg.export import AdvancedExportParameters, export
    from attnseg.optimize import AdvancedQuantizationParameters, quantize
    from attnseg.zoo import default_checkpoint, sample_dir

    out = tmp_path_factory.mktemp("shipped")
    exp = export(default_checkpoint(), output_dir=out / "export",
                 advanced=AdvancedExportParameters(parity_batches=1))
    calib = sample_dir() / "images"
    int8 = quantize(exp.xml_path, calibration=calib, subset_size=len(list(calib.iterdir())), quiet=True,
                    advanced=AdvancedQuantizationParameters(latency_runs=1))
    return {"fp32": exp.xml_path, "int8": Path(int8.output_xml)}


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_shipped_model_in_model_api_matches_segmenter_dice(shipped, precision):
    xml = shipped[precision]
    api = SegmentationModel.create_model(str(xml))  # no configuration: everything from the IR
    assert api.params.labels == ["background", "polyp"]
    assert read_rt_info(ov.Core().read_model(str(xml))).model_api["compatible"] is True
    seg = Segmenter(xml)
    d_api, d_seg = [], []
    for img_path, mask_path in _kvasir_test_images(20):
        bgr = cv2.imread(str(img_path))
        gt = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE) > 127
        d_api.append(_dice(np.asarray(api(bgr).resultImage), gt))
        d_seg.append(_dice(seg.predict(bgr).mask, gt))
    assert np.mean(d_seg) > 0.7  # the model segments polyps
    assert abs(np.mean(d_api) - np.mean(d_seg)) <= 0.005


@pytest.mark.slow
def test_camvid_shaped_multiclass_export_in_model_api(tmp_path):
    """An 11-class AttU_Net (width 4) exported end to end: >= 99% of pixels equal on real CamVid
    frames. The frames are shrunk to the model size first, so neither side resizes: a random
    network changes class every few pixels, where Model API's resize policy (interpolate the image
    without antialiasing, nearest-neighbour the arg-maxed map back) and the Segmenter's (area
    shrink, bilinear scores) legitimately differ."""
    from attnseg.export import AdvancedExportParameters, export
    from attnseg.models import create_model, save_checkpoint
    from tests.export.export_helpers import centred

    size = (176, 240)
    classes = [ln.split(" ", 1)[1].strip() for ln in (CAMVID / "classes.txt").read_text().splitlines()][:11]
    ckpt = tmp_path / "camvid.pt"
    save_checkpoint(ckpt, centred(create_model("AttU_Net", output_ch=11, base_width=4)), classes=classes,
                    input_size=size)
    res = export(ckpt, output_dir=tmp_path / "ir", advanced=AdvancedExportParameters(parity_batches=1))
    assert SegmentationModel.create_model(str(res.xml_path)).params.labels == classes  # no configuration
    # compared in f32 on both sides: eleven random, nearly tied logits flip under the CPU's bf16 default
    api, seg = f32_model_api(res.xml_path), Segmenter(res.xml_path, inference_precision="f32")
    frames = sorted((CAMVID / "test").glob("*.png"))[:10]
    assert frames
    equal = []
    for p in frames:
        fed = cv2.resize(cv2.imread(str(p)), (size[1], size[0]), interpolation=cv2.INTER_AREA)
        a, b = np.asarray(api(fed).resultImage), seg.predict(fed).mask
        assert len(np.unique(b)) >= 3
        equal.append((a == b).mean())
    assert np.mean(equal) >= 0.99


@pytest.mark.slow
def test_readme_model_api_snippet_runs(shipped, tmp_path, monkeypatch):
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Use with OpenVINO Model API"):]
    block = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)
    (tmp_path / "exported").symlink_to(shipped["fp32"].parent)
    img = _kvasir_test_images(1)[0][0]
    (tmp_path / "polyp.jpg").write_bytes(img.read_bytes())
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(block, "README.md", "exec"), scope)  # noqa: S102 - the README's own snippet
    assert set(np.unique(scope["mask"])) <= {0, 1} and scope["mask"].shape == cv2.imread(str(img)).shape[:2]
