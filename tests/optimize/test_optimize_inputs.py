"""Calibration inputs, FP16 compression and bad input: clear errors, exit code 2, nothing written.

None of these runs NNCF's quantization: they fail (or finish) before it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from attnseg.errors import DataError, InputFileError, InvalidOptionError, OptimizationError, OutputExistsError
from attnseg.imaging import read_image
from attnseg.metadata import ModelMetadata, Normalization, read_rt_info
from attnseg.optimize import AdvancedQuantizationParameters, quantize
from attnseg.optimize.calibration import InputFormat, find_calibration, load_calibration
from tests.optimize._optimize_models import copy_ir

REPO = Path(__file__).resolve().parents[2]


def _listing(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


# ----------------------------------------------------------------------- calibration inputs


@pytest.mark.parametrize("embedded", [True, False])
def test_calibration_tensors_are_what_the_runtime_feeds(embedded, calib_dir):
    """Calibration goes through the same preprocessing as inference (resize + normalize, or raw u8)."""
    from attnseg.runtime.preprocess import InputSpec, prepare

    meta = ModelMetadata(input_size=[64, 48], preprocessing_embedded=embedded,
                         input_layout="NHWC" if embedded else "NCHW", normalization=Normalization())
    fmt = InputFormat.of(meta, (64, 48))
    spec = InputSpec(layout=fmt.layout, dtype=fmt.dtype, channels=3, size=(64, 48),
                     normalization=Normalization(), embedded=embedded)
    cal = load_calibration(find_calibration(calib_dir), fmt, subset_size=3)
    by_stem = {p.stem: p for p in calib_dir.iterdir()}
    assert len(cal.items) == len(cal.names) == 3
    for name, item in zip(cal.names, cal.items):
        ref = prepare(by_stem[name], spec).tensor
        assert item.dtype == ref.dtype and item.shape == ref.shape
        assert np.array_equal(item, ref)
    assert cal.items[0].shape == ((1, 64, 48, 3) if embedded else (1, 3, 64, 48))


def test_calibration_from_a_dataset_split_never_uses_other_splits(kvasir):
    split = REPO / "splits" / "kvasir-seg.json"
    parts = json.loads(split.read_text())["splits"]
    cands = find_calibration(f"kvasir:{kvasir}", split, "train")
    assert len(cands.images) == len(parts["train"]) and cands.split == f"{split}:train"
    fmt = InputFormat.of(ModelMetadata(input_size=[32, 32], preprocessing_embedded=True, input_layout="NHWC"),
                         (32, 32))
    cal = load_calibration(cands, fmt, subset_size=5, seed=1)
    assert cal.info.used == 5 and cal.info.found == len(parts["train"])
    assert set(cal.names) <= set(parts["train"]) and not set(cal.names) & set(parts["test"])
    again = load_calibration(cands, fmt, subset_size=5, seed=1)
    assert again.names == cal.names, "the subset must be reproducible"
    assert load_calibration(cands, fmt, subset_size=5, seed=2).names != cal.names
    no_split = find_calibration(f"kvasir:{kvasir}")
    assert any("--split" in w for w in no_split.warnings)
    with pytest.raises(DataError, match="--allow-test-calibration"):
        find_calibration(f"kvasir:{kvasir}", split, "test")
    on_test = find_calibration(f"kvasir:{kvasir}", split, "test", allow_test=True)
    assert len(on_test.images) == len(parts["test"]) and any("test split" in w for w in on_test.warnings)
    assert not cands.warnings


def test_unreadable_images_are_skipped_with_a_warning(tmp_path, calib_dir):
    d = tmp_path / "mixed"
    d.mkdir()
    for p in sorted(calib_dir.iterdir())[:3]:
        shutil.copy2(p, d / p.name)
    (d / "broken.jpg").write_bytes(b"not a jpeg")
    (d / "empty.png").write_bytes(b"")
    fmt = InputFormat.of(ModelMetadata(input_size=[32, 32], preprocessing_embedded=True, input_layout="NHWC"),
                         (32, 32))
    cal = load_calibration(find_calibration(d), fmt, subset_size=300)
    assert cal.info.used == 3 and cal.info.found == 5 and len(cal.info.skipped) == 2
    assert any("unreadable" in w for w in cal.warnings)


def test_arrays_of_other_sizes_are_resized(calib_dir):
    img = read_image(min(calib_dir.iterdir()))
    fmt = InputFormat.of(ModelMetadata(input_size=[64, 64], preprocessing_embedded=True, input_layout="NHWC"),
                         (64, 64))
    gray16 = (np.arange(50 * 70, dtype=np.uint16).reshape(50, 70) * 10)
    cal = load_calibration(find_calibration([img, gray16]), fmt, subset_size=10)
    assert cal.info.used == 2 and cal.info.resized == 2
    assert all(x.shape == (1, 64, 64, 3) and x.dtype == np.uint8 for x in cal.items)


# ----------------------------------------------------------------------- FP16 and the scope


def test_fp16_weight_compression(fp32_ir, tmp_path, agreement_dir):
    import openvino as ov

    from attnseg.runtime import Segmenter

    xml = copy_ir(fp32_ir, tmp_path / "m")
    r = quantize(xml, precision="fp16", validation=agreement_dir, quiet=True,
                 advanced=AdvancedQuantizationParameters(latency_runs=2))
    assert r.output_xml == tmp_path / "m" / "model_fp16.xml" and r.precision == "fp16"
    model = ov.Core().read_model(str(r.output_xml))
    assert any(op.get_type_name() == "Constant" and op.get_element_type().get_type_name() == "f16"
               for op in model.get_ordered_ops())
    assert read_rt_info(model).precision == "fp16" and r.quantizers == 0 and r.calibration is None
    assert 0.4 < r.output_bin.stat().st_size / xml.with_suffix(".bin").stat().st_size < 0.6
    assert r.accuracy.before == pytest.approx(1.0) and r.accuracy.after > 0.97
    assert Segmenter(r.output_xml).predict(min((agreement_dir / "images").iterdir())).mask.any()
    with pytest.raises(OptimizationError, match="already has FP16"):
        quantize(r.output_xml, tmp_path / "again", precision="fp16",
                 advanced=AdvancedQuantizationParameters(latency_runs=0))


def test_gate_scope_is_found_by_structure(fp32_ir):
    import openvino as ov

    from attnseg.optimize.nncf_run import build_ignored_scope

    model = ov.Core().read_model(str(fp32_ir))
    scope, info = build_ignored_scope(model, [], [], gates=True)
    kinds = {op.get_friendly_name(): op.get_type_name() for op in model.get_ordered_ops()}
    assert sorted(kinds[n] for n in info.nodes) == ["Multiply"] * 4 + ["Sigmoid"] * 4
    assert set(scope.names) == set(info.nodes)
    none_scope, none_info = build_ignored_scope(model, [], [], gates=False)
    assert none_scope is None and none_info.nodes == []
    with pytest.raises(OptimizationError, match="matches no operation.*Convolution"):
        build_ignored_scope(model, ["Sigmoidd"], [], gates=False)
    with pytest.raises(OptimizationError, match="not a node"):
        build_ignored_scope(model, [], ["no_such_node"], gates=False)


# ----------------------------------------------------------------------------- bad input


@pytest.fixture()
def fresh_ir(fp32_ir, tmp_path) -> Path:
    return copy_ir(fp32_ir, tmp_path / "model")


def _nothing_written(xml: Path) -> None:
    assert _listing(xml.parent) == {"model.xml", "model.bin", "model.json"}


def test_empty_calibration_folder(fresh_ir, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="contains no images"):
        quantize(fresh_ir, calibration=tmp_path / "empty",
                 advanced=AdvancedQuantizationParameters(latency_runs=0))
    _nothing_written(fresh_ir)


def test_unreadable_calibration_folder(fresh_ir, tmp_path):
    d = tmp_path / "broken"
    d.mkdir()
    for i in range(3):
        (d / f"{i}.jpg").write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(DataError, match="None of the 3 calibration images"):
        quantize(fresh_ir, calibration=d, advanced=AdvancedQuantizationParameters(latency_runs=0))
    _nothing_written(fresh_ir)
    with pytest.raises(InputFileError, match="does not exist"):
        quantize(fresh_ir, calibration=tmp_path / "missing",
                 advanced=AdvancedQuantizationParameters(latency_runs=0))
    with pytest.raises(DataError, match="needs calibration images"):
        quantize(fresh_ir, advanced=AdvancedQuantizationParameters(latency_runs=0))


def test_validation_images_without_masks(fresh_ir, tmp_path, calib_dir, agreement_dir):
    val = tmp_path / "val"
    shutil.copytree(agreement_dir, val)
    next(iter(sorted((val / "masks").iterdir()))).unlink()
    with pytest.raises(DataError, match="1 of 6 images have no mask"):
        quantize(fresh_ir, calibration=calib_dir, validation=val,
                 advanced=AdvancedQuantizationParameters(latency_runs=0))
    only_images = tmp_path / "only_images"
    shutil.copytree(agreement_dir / "images", only_images)
    with pytest.raises(DataError, match="not an image/mask data set"):
        quantize(fresh_ir, calibration=calib_dir, validation=only_images,
                 advanced=AdvancedQuantizationParameters(latency_runs=0))
    _nothing_written(fresh_ir)


def test_option_errors(fresh_ir, calib_dir, agreement_dir, tmp_path):
    with pytest.raises(InvalidOptionError, match="needs --validation"):
        quantize(fresh_ir, calibration=calib_dir, max_drop=0.01)
    with pytest.raises(InvalidOptionError, match="0.005 = 0.5 point"):
        quantize(fresh_ir, calibration=calib_dir, validation=agreement_dir, max_drop=0.5 * 100)
    with pytest.raises(InvalidOptionError, match="Unknown preset"):
        quantize(fresh_ir, calibration=calib_dir, preset="fast")
    with pytest.raises(InvalidOptionError, match="FP16 weight compression takes no calibration"):
        quantize(fresh_ir, calibration=calib_dir, precision="fp16")
    with pytest.raises(OptimizationError, match="matches no operation"):
        quantize(fresh_ir, calibration=calib_dir,
                 advanced=AdvancedQuantizationParameters(ignore_types="NoSuchOp", latency_runs=0))
    with pytest.raises(InputFileError, match="ONNX"):
        onnx = tmp_path / "m.onnx"
        onnx.write_bytes(b"x")
        quantize(onnx, calibration=calib_dir)
    _nothing_written(fresh_ir)


def test_existing_output_needs_force(fresh_ir, calib_dir):
    (fresh_ir.parent / "model_int8.json").write_text("{}")
    with pytest.raises(OutputExistsError, match="--force"):
        quantize(fresh_ir, calibration=calib_dir)


def test_metadata_saying_int8_is_refused(fresh_ir, calib_dir, tmp_path):
    import openvino as ov

    from attnseg.metadata import write_rt_info

    model = ov.Core().read_model(str(fresh_ir))
    meta = read_rt_info(model)
    meta.precision = "int8"
    write_rt_info(model, meta)
    xml = tmp_path / "labelled" / "model.xml"
    xml.parent.mkdir()
    ov.save_model(model, str(xml), compress_to_fp16=False)
    with pytest.raises(OptimizationError, match="already quantized.*precision 'int8'"):
        quantize(xml, calibration=calib_dir)
    assert _listing(xml.parent) == {"model.xml", "model.bin"}


def test_cli_bad_input_exits_2_without_traceback(fresh_ir, tmp_path, capsys):
    from attnseg.cli.optimize import main

    (tmp_path / "empty").mkdir()
    assert main([str(fresh_ir), "--calibration", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("seg-optimize: error:") and "contains no images" in err and "Traceback" not in err
    assert main([str(fresh_ir), "--precision", "fp16", "--calibration", str(tmp_path / "empty")]) == 2
    _nothing_written(fresh_ir)


def test_cli_fp16_json(fresh_ir, capsys):
    from attnseg.cli.optimize import main

    assert main([str(fresh_ir), "--precision", "fp16", "--latency-runs", "0", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["precision"] == "fp16" and Path(out["output"]["xml"]).is_file()
    assert out["latency"] is None and out["accuracy"] is None and out["budget_met"] is None


def test_multiclass_models_are_scored_with_miou(calib_dir, agreement_dir, tmp_path):
    """mIoU from the confusion matrix (attnseg.data.metrics) on class-id masks; Dice is refused."""
    import cv2

    from attnseg.runtime import Segmenter
    from tests.optimize._optimize_models import build_ir

    xml = build_ir(tmp_path / "mc" / "model.xml", sorted(calib_dir.iterdir()), classes=("dark", "mid", "bright"))
    val = tmp_path / "val"
    (val / "images").mkdir(parents=True)
    (val / "masks").mkdir()
    seg = Segmenter(xml, config={"INFERENCE_PRECISION_HINT": "f32"})
    for img in sorted((agreement_dir / "images").iterdir())[:4]:
        shutil.copy2(img, val / "images" / img.name)
        mask = seg.predict(img).mask
        assert len(np.unique(mask)) == 3
        cv2.imwrite(str(val / "masks" / f"{img.stem}.png"), mask)
    r = quantize(xml, precision="fp16", validation=val, quiet=True,
                 advanced=AdvancedQuantizationParameters(latency_runs=0))
    assert r.accuracy.metric == "miou" and r.accuracy.count == 4
    assert r.accuracy.before == pytest.approx(1.0) and 0.9 < r.accuracy.after <= 1.0
    assert "mIoU (4 images, f32)" in r.report_md.read_text()
    with pytest.raises(OptimizationError, match="use --metric miou"):
        quantize(xml, tmp_path / "dice", precision="fp16", validation=val, metric="dice")
