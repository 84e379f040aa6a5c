"""Plain INT8 quantization of a tiny AttU_Net on real Kvasir images: the model still segments,
the metadata is carried over, and the report's figures agree with each other and the files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from attnseg.data.metrics import binary_metrics
from attnseg.errors import OptimizationError
from attnseg.metadata import ModelMetadata, read_rt_info


def _fake_quantize_count(xml) -> int:
    import openvino as ov

    return sum(op.get_type_name() == "FakeQuantize" for op in ov.Core().read_model(str(xml)).get_ordered_ops())


def test_int8_model_still_segments(int8_run, fp32_ir, agreement_dir):
    """Masks of the INT8 IR (through the runtime) agree with the FP32 IR's masks."""
    from attnseg.runtime import Segmenter

    fp32 = Segmenter(fp32_ir, config={"INFERENCE_PRECISION_HINT": "f32"})
    int8 = Segmenter(int8_run.output_xml)
    dices = []
    for img in sorted((agreement_dir / "images").iterdir()):
        a, b = fp32.predict(img).mask, int8.predict(img).mask
        assert a.shape == b.shape
        dices.append(binary_metrics(b, a)["dice"])
    assert np.mean(dices) >= 0.9, dices
    assert min(dices) >= 0.85, dices


def test_accuracy_figures_match_an_independent_evaluation(int8_run, agreement_dir):
    """The report's Dice is the project's Dice: FP32 scores exactly 1 on its own masks, and the
    INT8 figure equals Dice of the runtime's INT8 masks (f32 arithmetic) against those masks."""
    from attnseg.data import folder_pairs, load_pair
    from attnseg.runtime import Segmenter

    acc = int8_run.accuracy
    assert acc.metric == "dice" and acc.count == 6 and acc.inference_precision == "f32"
    assert acc.before == pytest.approx(1.0)
    seg = Segmenter(int8_run.output_xml, config={"INFERENCE_PRECISION_HINT": "f32"})
    dices = []
    for s in folder_pairs(agreement_dir):
        image, mask = load_pair(s, "binary")
        dices.append(binary_metrics(seg.predict(image).mask, mask)["dice"])
    assert acc.after == pytest.approx(float(np.mean(dices)), abs=1e-9)
    assert acc.drop == pytest.approx(acc.before - acc.after)
    assert acc.max_drop is None and acc.met is None and int8_run.budget_met is None


def test_files_metadata_and_precision(int8_run, fp32_ir):
    import openvino as ov

    r = int8_run
    assert r.output_xml.name == "model_int8.xml" and r.output_xml.parent == r.source_xml.parent
    for p in (r.output_xml, r.output_bin, r.metadata_path, r.report_json, r.report_md):
        assert p.is_file(), p
    assert not [p for p in r.output_xml.parent.iterdir() if p.name.startswith(".")], "temporary files left behind"
    src = ModelMetadata.read_json(fp32_ir.with_suffix(".json"))
    rt = read_rt_info(ov.Core().read_model(str(r.output_xml)))
    twin = ModelMetadata.read_json(r.metadata_path)
    for meta in (rt, twin):
        assert meta.precision == "int8"
        for key in ("task", "classes", "input_size", "input_layout", "input_dtype", "normalization",
                    "preprocessing_embedded", "output", "threshold"):
            assert getattr(meta, key) == getattr(src, key), key
        opt = meta.extra["optimization"]
        assert opt["calibration_images"] == 12 and opt["preset"] == r.settings["preset"]
    assert r.quantizers == _fake_quantize_count(r.output_xml) > 10


def test_report_fields_are_consistent(int8_run, fp32_ir):
    r = int8_run
    d = json.loads(r.report_json.read_text())
    assert d == json.loads(json.dumps(r.to_dict(), default=str))
    size = d["size"]
    assert size["before_bytes"] == fp32_ir.stat().st_size + fp32_ir.with_suffix(".bin").stat().st_size
    assert size["after_bytes"] == r.output_xml.stat().st_size + r.output_bin.stat().st_size
    assert r.output_bin.stat().st_size < 0.5 * fp32_ir.with_suffix(".bin").stat().st_size  # int8 weights
    assert size["ratio"] == pytest.approx(size["after_bytes"] / size["before_bytes"], abs=1e-4)
    cal = d["calibration"]
    assert (cal["found"], cal["used"], cal["resized"], cal["skipped"]) == (12, 12, 12, [])
    assert cal["input_size"] == [64, 64] and cal["model_input"].startswith("uint8 NHWC BGR")
    assert d["ignored"]["nodes"] == [] and d["ignored"]["gates"] is False
    lat = d["latency"]
    assert {"fp32", "optimized"} <= set(lat["models"]) and lat["runs"] == 3
    for m in lat["models"].values():
        assert m["runs"] == 3 and 0 < m["min_ms"] <= m["median_ms"] <= m["p90_ms"]
    assert lat["ratio_vs_fp32"] == pytest.approx(lat["models"]["optimized"]["median_ms"]
                                                 / lat["models"]["fp32"]["median_ms"])
    assert d["accuracy"]["drop_points"] == pytest.approx(100 * (d["accuracy"]["before"] - d["accuracy"]["after"]),
                                                         abs=1e-3)
    assert any("calibration images" in w for w in d["warnings"]), "fewer than 100 images must warn"
    assert {"quantize_s", "total_s", "latency_s", "validate_s"} <= set(d["timings_s"])
    md = r.report_md.read_text()
    assert "| model size (MB) |" in md and "Dice (6 images, f32)" in md and "latency median" in md


def test_an_int8_ir_is_refused(int8_run, calib_dir, tmp_path):
    from attnseg.optimize import AdvancedQuantizationParameters, quantize

    with pytest.raises(OptimizationError, match="already quantized"):
        quantize(int8_run.output_xml, tmp_path / "again", calibration=calib_dir,
                 advanced=AdvancedQuantizationParameters(latency_runs=0))
    assert not (tmp_path / "again").exists()
