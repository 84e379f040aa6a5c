"""A checkpoint is exported on the way (attnseg.export), into one new folder with the result."""

from __future__ import annotations

import pytest

from attnseg.errors import OptimizationError, OutputExistsError
from attnseg.metadata import ModelMetadata


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    import torch

    from attnseg.models import create_model, save_checkpoint

    torch.manual_seed(0)
    model = create_model("AttU_Net", img_ch=3, output_ch=1, base_width=4)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    return save_checkpoint(path, model, classes=["polyp"], input_size=(64, 64))


@pytest.mark.slow
def test_checkpoint_is_exported_then_compressed(tiny_checkpoint):
    from attnseg.optimize import AdvancedQuantizationParameters, quantize

    out = tiny_checkpoint.parent / "tiny_openvino"
    r = quantize(tiny_checkpoint, precision="fp16", quiet=True,
                 advanced=AdvancedQuantizationParameters(latency_runs=2))
    assert r.output_xml == out / "model_fp16.xml" and r.source_xml == out / "model.xml"
    assert r.exported_from == str(tiny_checkpoint) and "export_s" in r.timings
    names = {p.name for p in out.iterdir()}
    assert {"model.xml", "model.bin", "model.onnx", "model_fp16.xml", "model_fp16.bin", "model_fp16.json",
            "model_fp16_report.json", "model_fp16_report.md"} <= names
    assert not [n for n in names if n.startswith(".")]
    fp32, fp16 = ModelMetadata.read_json(out / "model.json"), ModelMetadata.read_json(out / "model_fp16.json")
    assert (fp32.precision, fp16.precision) == ("fp32", "fp16")
    assert fp16.input_size == [64, 64] and fp16.preprocessing_embedded and fp16.classes == ["polyp"]
    with pytest.raises(OutputExistsError, match="--force"):
        quantize(tiny_checkpoint, precision="fp16")


def test_checkpoint_output_must_be_a_folder(tiny_checkpoint, tmp_path):
    from attnseg.optimize import quantize

    with pytest.raises(OptimizationError, match="give -o a folder"):
        quantize(tiny_checkpoint, tmp_path / "x.xml", precision="fp16")
    assert not list(tmp_path.iterdir())
