"""A letterbox model is calibrated and scored on letterboxed inputs, exactly as the runtime feeds it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from attnseg.imaging import read_image
from attnseg.metadata import ModelMetadata, Normalization
from attnseg.optimize.calibration import InputFormat, find_calibration, load_calibration
from attnseg.resize_policy import fit, pad_color


def test_letterbox_models_are_calibrated_on_letterboxed_images(calib_dir):
    meta = ModelMetadata(input_size=[64, 64], preprocessing_embedded=True, input_layout="NHWC",
                         normalization=Normalization(), resize_policy="letterbox")
    fmt = InputFormat.of(meta, (64, 64))
    stretched = InputFormat.of(replace(meta, resize_policy="stretch"), (64, 64))
    cal = load_calibration(find_calibration(calib_dir), fmt, subset_size=4)
    assert "letterbox" in cal.info.model_input
    by_stem = {p.stem: p for p in calib_dir.iterdir()}
    pad = np.array(pad_color(Normalization()), dtype=np.uint8)
    padded = 0
    for name, item in zip(cal.names, cal.items):
        bgr = read_image(by_stem[name])
        place = fit(bgr.shape[:2], (64, 64), "letterbox")
        x = item[0]  # 64x64x3 u8 BGR
        content = np.zeros((64, 64), bool)
        content[place.top:place.top + place.height, place.left:place.left + place.width] = True
        assert (x[~content] == pad).all()  # the padding is the mean colour, as at inference
        padded += int((~content).sum() > 0)
        assert not np.array_equal(item, stretched.tensor(bgr)) or not (~content).any()
    assert padded > 0, "Kvasir's non-square images must be padded"


def test_scorer_scores_a_letterbox_ir_as_the_runtime_segments_it(shipped_letterbox_ir, kvasir_images):
    """The scorer's mask of each validation image equals Segmenter.predict's (same codec, same
    padding crop); a stretch-fed scorer of the same IR would not."""
    import openvino as ov

    from attnseg.optimize.options import Metric
    from attnseg.optimize.validation import Scorer, ValidationSet
    from attnseg.runtime import Segmenter
    from attnseg.runtime.ports import Port

    seg = Segmenter(shipped_letterbox_ir, inference_precision="f32")
    meta = seg.metadata
    compiled = ov.Core().compile_model(str(shipped_letterbox_ir), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    main = next(o for o in compiled.outputs if meta.output in o.get_names())
    fmt = InputFormat.of(meta, tuple(meta.input_size), np.uint8, Port.of(main))
    images = [read_image(p) for p in kvasir_images[:3]]
    vset = ValidationSet(prepared=[fmt.prepare(b) for b in images], masks=[np.zeros(b.shape[:2], np.uint8)
                         for b in images], names=["a", "b", "c"], data="kvasir", metric=Metric.DICE, num_classes=2)
    scorer = Scorer(vset, fmt.codec, meta.output)
    for i, bgr in enumerate(images):
        got = scorer.predict(compiled, i)
        want = seg.predict(bgr).mask
        assert got.shape == bgr.shape[:2] and (got == want).mean() > 0.999
    assert any(p.offset != (0, 0) for p in vset.prepared)  # the letterbox really pads these images


def test_a_letterbox_int8_model_is_calibrated_and_scored_letterboxed(letterbox_ir, kvasir, kvasir_names, calib_dir,
                                                                     tmp_path):
    """Validation masks are the FP32 letterbox IR's own runtime masks: scored as deployed (letterboxed,
    padding cropped), the FP32 model agrees with them exactly; the INT8 model is calibrated on letterboxed
    images and scored the same way."""
    import shutil

    import cv2

    from attnseg.optimize import quantize
    from attnseg.runtime import Segmenter
    from tests.optimize._optimize_models import copy_ir

    agreement = tmp_path / "agreement"
    (agreement / "images").mkdir(parents=True)
    (agreement / "masks").mkdir()
    seg = Segmenter(letterbox_ir, inference_precision="f32")
    for name in kvasir_names[20:26]:
        shutil.copy2(kvasir / "images" / name, agreement / "images" / name)
        mask = seg.predict(agreement / "images" / name).mask
        cv2.imwrite(str(agreement / "masks" / (name.rsplit(".", 1)[0] + ".png")), mask * 255)
    xml = copy_ir(letterbox_ir, tmp_path / "int8")
    res = quantize(xml, calibration=calib_dir, validation=agreement, quiet=True)
    assert "letterbox" in res.calibration.model_input
    assert res.accuracy.inference_precision == "f32" and res.accuracy.before == 1.0
    assert res.accuracy.after > 0.9
