"""Every registered architecture exports (checkpoint -> ONNX -> IR) and matches PyTorch."""

from __future__ import annotations

import json

import numpy as np
import pytest

from attnseg.models import list_models
from tests.export.export_helpers import SIZE, make_checkpoint

openvino = pytest.importorskip("openvino")


@pytest.mark.parametrize("arch", list_models())
def test_every_registered_model_exports_with_parity(arch, export_tmp):
    from attnseg.export import FP32_MAX_ABS_DIFF, export
    from attnseg.metadata import ModelMetadata, read_rt_info

    ckpt = make_checkpoint(export_tmp, arch)
    volumetric = arch.startswith("HybridSN")
    out = export_tmp / f"all_{arch}"
    res = export(ckpt, output_dir=out, input_size=None if volumetric else SIZE)

    assert sorted(p.name for p in out.iterdir()) == [
        "export_report.json", "model.bin", "model.json", "model.onnx", "model.xml"
    ]
    # parity through ONNX Runtime and OpenVINO (f32 enforced; device default reported too)
    assert res.parity.passed and res.parity.enforced
    for backend in ("onnxruntime", "openvino"):
        fig = res.parity.figures(backend, "f32")
        assert fig.max_abs_diff <= FP32_MAX_ABS_DIFF
        assert fig.equal_pixels >= 0.999
        assert fig.dice >= 0.99

    # the IR describes itself; the JSON twin says the same
    model = openvino.Core().read_model(res.xml_path)
    meta = read_rt_info(model)
    assert meta == ModelMetadata.read_json(res.metadata_path) == res.metadata
    assert meta.arch == arch and meta.precision == "fp32" and meta.output == "logits"
    assert meta.source_checkpoint_sha256 and len(meta.source_checkpoint_sha256) == 64
    assert model.input(0).get_any_name() == "image"
    assert model.output(0).get_any_name() == "logits"
    if volumetric:
        b, p = 15, 11
        assert meta.task == "pixel_classification" and not meta.preprocessing_embedded
        assert list(model.input(0).get_shape()) == [1, 1, b, p, p]
        assert list(model.output(0).get_shape()) == [1, 5]
    else:
        # preprocessing embedded: u8 NHWC BGR at the model size, static shapes
        assert meta.preprocessing_embedded and meta.input_layout == "NHWC" and meta.input_dtype == "u8"
        assert meta.input_size == list(SIZE) and meta.batch == 1 and meta.task == "binary"
        assert list(model.input(0).get_shape()) == [1, *SIZE, 3]
        assert model.input(0).get_element_type().get_type_name() == "u8"
        assert list(model.output(0).get_shape()) == [1, 2, *SIZE]  # binary: [logit(t), logit] (Model API)

    report = json.loads(res.report_path.read_text())
    assert report["onnx"]["opset"] >= 17
    assert report["versions"]["openvino"] == openvino.__version__
    assert set(report["timings_s"]) >= {"onnx_s", "convert_s", "compile_and_parity_s", "total_s"}
    assert report["parity"]["passed"] is True

    import onnx

    proto = onnx.load(str(res.onnx_path))
    assert [i.name for i in proto.graph.input] == ["image"]
    assert [o.name for o in proto.graph.output] == ["logits"]
    assert np.isfinite(res.parity.figures("openvino", "f32").max_abs_diff)
