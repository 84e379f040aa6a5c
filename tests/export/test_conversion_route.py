"""``seg-export --via torch|onnx``: both routes pass the same parity gate and say which one ran;
``model.onnx`` is written either way and carries the model's description in its metadata_props."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import openvino as ov
import pytest

from attnseg.export import AdvancedExportParameters, export
from attnseg.metadata import ModelMetadata, read_rt_info
from tests.export.export_helpers import SIZE, make_checkpoint


@pytest.fixture(scope="module")
def routes(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("routes")
    ckpt = make_checkpoint(tmp, "AttU_Net")
    return {via: export(ckpt, output_dir=tmp / via, input_size=SIZE, via=via,
                        advanced=AdvancedExportParameters(parity_batches=1))
            for via in ("torch", "onnx")}


@pytest.mark.parametrize("via", ["torch", "onnx"])
def test_route_passes_parity_and_is_recorded(routes, via):
    res = routes[via]
    report = json.loads(res.report_path.read_text())
    assert report["conversion"]["route"] == via and report["options"]["via"] == via
    assert report["parity"]["passed"] and res.parity.figures("openvino", "f32").max_abs_diff < 1e-3
    assert res.metadata.conversion_route == via
    model = ov.Core().read_model(str(res.xml_path))
    assert read_rt_info(model).conversion_route == via
    assert [o.get_any_name() for o in model.outputs] == ["logits"]
    assert model.input(0).get_any_name() == "image"


def test_both_routes_give_the_same_ir_outputs(routes):
    x = np.random.default_rng(1).integers(0, 256, (1, *SIZE, 3), dtype=np.uint8)
    core = ov.Core()
    outs = [core.compile_model(str(routes[v].xml_path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})(x)[0]
            for v in ("torch", "onnx")]
    np.testing.assert_allclose(outs[0], outs[1], atol=1e-4)


@pytest.mark.parametrize("via", ["torch", "onnx"])
def test_onnx_is_written_with_the_description(routes, via):
    res = routes[via]
    sess = ort.InferenceSession(str(res.onnx_path), providers=["CPUExecutionProvider"])
    described = ModelMetadata.from_json(sess.get_modelmeta().custom_metadata_map["attnseg"])
    assert described.to_dict() == ModelMetadata.read_json(res.metadata_path).to_dict()
    assert sess.get_outputs()[0].name == "logits" and sess.get_outputs()[0].shape[1] == 1  # the bare network


def test_unknown_route_is_one_clear_error(tmp_path):
    from attnseg.errors import InvalidOptionError

    with pytest.raises(InvalidOptionError, match=r"conversion route.*torch, onnx"):
        export(None, output_dir=tmp_path / "x", via="tflite")
