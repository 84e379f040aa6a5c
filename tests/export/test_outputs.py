"""Output variants of the IR: mask, attention maps, FP16, dynamic shapes, grayscale, OVMS, benchmark_app."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from attnseg.metadata import ModelMetadata, Normalization, read_rt_info
from tests.export.export_helpers import SIZE, centred

ov = pytest.importorskip("openvino")


def test_mask_and_attention_outputs(att_export):
    res = att_export
    model = ov.Core().read_model(res.xml_path)
    names = [o.get_any_name() for o in model.outputs]
    assert names == ["mask", "attention_Att5", "attention_Att4", "attention_Att3", "attention_Att2"]
    assert res.metadata.attention_outputs == names[1:]
    assert res.metadata.task == "multiclass" and res.metadata.classes == ["class_0", "class_1"]
    # mask: (N, H, W) u8 class indices, documented in the metadata
    assert list(model.output("mask").get_shape()) == [1, *SIZE]
    assert model.output("mask").get_element_type().get_type_name() == "u8"
    spec = res.metadata.output_spec
    assert spec["dtype"] == "u8" and spec["shape"] == ["N", "H", "W"] and "argmax" in spec["meaning"]
    # gate maps at their own resolution: 1/8, 1/4, 1/2, 1 of the input
    shapes = [list(model.output(n).get_shape()) for n in names[1:]]
    assert shapes == [[1, 1, 8, 8], [1, 1, 16, 16], [1, 1, 32, 32], [1, 1, 64, 64]]
    fig = res.parity.figures("openvino", "f32")
    assert fig.attention_max_abs_diff is not None and fig.attention_max_abs_diff <= 1e-3
    assert fig.equal_pixels >= 0.999 and res.parity.inputs.startswith(("images:", "random"))

    compiled = ov.Core().compile_model(model, "CPU")
    img = np.random.default_rng(0).integers(0, 256, (1, *SIZE, 3), dtype=np.uint8)
    out = compiled(img)
    mask = out[compiled.output("mask")]
    assert set(np.unique(mask).tolist()) <= {0, 1}
    att = out[compiled.output("attention_Att2")]
    assert att.min() >= 0.0 and att.max() <= 1.0


def test_rt_info_round_trip(att_export, tmp_path):
    model = ov.Core().read_model(att_export.xml_path)
    meta = read_rt_info(model)
    assert meta == att_export.metadata == ModelMetadata.read_json(att_export.metadata_path)
    assert meta.preprocessing_embedded and meta.input_dtype == "u8" and meta.input_layout == "NHWC"
    assert meta.normalization == Normalization()  # the checkpoint's (save_checkpoint default)
    # survives a second save/load untouched
    ov.save_model(model, str(tmp_path / "again.xml"), compress_to_fp16=False)
    assert read_rt_info(ov.Core().read_model(tmp_path / "again.xml")) == meta


def test_ovms_repository_layout(att_export, export_tmp):
    from attnseg.export.ovms import write_repository

    repo = export_tmp / "ovms"
    version = repo / "polyp" / "1"
    assert sorted(p.name for p in version.iterdir()) == ["model.bin", "model.json", "model.xml"]
    config = json.loads((repo / "config.json").read_text())
    assert config["model_config_list"] == [
        {"config": {"name": "polyp", "base_path": "polyp", "target_device": "CPU"}}
    ]
    # a second model is merged in, entries of other models are kept
    files = [att_export.xml_path, att_export.bin_path]
    write_repository(repo, "second", files, "CPU", force=False)
    names = [e["config"]["name"] for e in json.loads((repo / "config.json").read_text())["model_config_list"]]
    assert names == ["polyp", "second"]
    from attnseg.errors import OutputExistsError

    with pytest.raises(OutputExistsError):
        write_repository(repo, "second", files, "CPU", force=False)


def test_benchmark_app_runs_without_shape(att_export):
    tool = shutil.which("benchmark_app") or str(Path(sys.executable).with_name("benchmark_app"))
    proc = subprocess.run(
        [tool, "-m", str(att_export.xml_path), "-d", "CPU", "-niter", "3", "-hint", "latency"],
        check=False, capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Throughput" in proc.stdout


def test_dynamic_grayscale_embedded_preprocessing_is_exact(tmp_path, shared_data):
    """A 1-channel model: the IR converts BGR to gray exactly like OpenCV, at any size."""
    from attnseg.export import AdvancedExportParameters, export
    from attnseg.imaging import normalize
    from attnseg.models import create_model

    norm = Normalization(mean=(0.3,), std=(0.2,), channel_order="GRAY")
    model = centred(create_model("U_Net", img_ch=1, base_width=4))
    res = export(model=model, output_dir=tmp_path / "gray", input_size=SIZE,
                 samples=shared_data / "isbi-membrane" / "images",
                 advanced=AdvancedExportParameters(dynamic=True, normalization=norm))
    assert res.parity.passed and res.parity.inputs.startswith("images:")
    meta = res.metadata
    assert meta.input_size is None and meta.batch is None and meta.input_channels == 3
    assert meta.model_input_channels == 1 and meta.normalization == norm
    compiled = ov.Core().compile_model(str(res.xml_path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    assert str(compiled.input(0).get_partial_shape()) == "[?,?,?,3]"
    img = np.random.default_rng(3).integers(0, 256, (2, 48, 80, 3), dtype=np.uint8)
    got = compiled(img)[0]
    x = np.stack([normalize(i, norm) for i in img])
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    assert ref.shape == (2, 1, 48, 80) and got.shape == (2, 2, 48, 80)  # binary: [logit(t), logit]
    assert np.all(got[:, 0] == 0.0)  # logit(0.5)
    assert np.abs(got[:, 1:] - ref).max() <= 1e-4


def test_fp16_probabilities_of_a_pixel_classifier(tmp_path):
    """HybridSN (5-D patches, raw f32 input), FP16 weights: figures reported, not enforced."""
    from attnseg.export import AdvancedExportParameters, export
    from attnseg.models import create_model

    model = centred(create_model("HybridSN", bands=15, patch_size=11, num_classes=5))
    res = export(model=model, output_dir=tmp_path / "hsn16", precision="fp16",
                 advanced=AdvancedExportParameters(output="probabilities"))
    meta = res.metadata
    assert meta.precision == "fp16" and meta.output == "probabilities" and not meta.preprocessing_embedded
    assert meta.input_layout == "NCDHW" and meta.task == "pixel_classification"
    assert not res.parity.enforced and res.parity.figures("openvino").max_abs_diff < 0.05
    xml = res.xml_path.read_text()
    assert 'element_type="f16"' in xml
    compiled = ov.Core().compile_model(str(res.xml_path), "CPU")
    probs = compiled(np.random.default_rng(0).standard_normal((1, 1, 15, 11, 11)).astype(np.float32))[0]
    assert probs.shape == (1, 5) and abs(float(probs.sum()) - 1.0) < 1e-2


def test_foreign_module_exports_with_sensible_defaults(tmp_path):
    """Any nn.Module (here a dict-returning net from "another library") exports via model=; AUTO device."""
    from attnseg.export import AdvancedExportParameters, export

    class TinyNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
                                            torch.nn.Conv2d(4, 1, 1))

        def forward(self, x):
            return {"out": self.body(x)}

    torch.manual_seed(0)
    cache = tmp_path / "ov_cache"
    res = export(model=TinyNet(), output_dir=tmp_path / "tiny", input_size=(32, 48), device="AUTO",
                 advanced=AdvancedExportParameters(output="mask", batch=2, cache_dir=cache))
    assert res.device == "AUTO" and any(cache.iterdir())  # compiled through the model cache
    meta = res.metadata
    assert meta.arch == "TinyNet" and meta.classes == ["foreground"] and meta.task == "binary"
    assert meta.batch == 2 and res.parity.input_shape == [2, 32, 48, 3]
    assert res.parity.figures("openvino", "f32").enforced
    assert meta.normalization == Normalization() and meta.source.startswith("module:")
    assert meta.source_checkpoint_sha256 == ""
    assert res.parity.passed and meta.output_spec["shape"] == ["N", "H", "W"]


def test_failed_parity_writes_nothing(tmp_path):
    """A model whose ONNX graph cannot match PyTorch (random noise inside) fails, leaving nothing."""
    from attnseg.errors import ExportError
    from attnseg.export import export

    class Noisy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 1, 1)

        def forward(self, x):
            return self.conv(x) + torch.rand_like(x[:, :1])

    out = tmp_path / "noisy"
    with pytest.raises(ExportError, match="does not match PyTorch"):
        export(model=Noisy(), output_dir=out, input_size=(32, 32))
    assert list(tmp_path.iterdir()) == []


def test_import_does_not_load_torch():
    code = "import sys, attnseg.export; assert not {'torch', 'openvino', 'onnx'} & set(sys.modules), sys.modules.keys()"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_torchscript_fallback_for_models_torch_export_cannot_capture(tmp_path, caplog):
    """Data-dependent Python control flow defeats torch.export; the TorchScript exporter takes over."""
    from attnseg.export import export

    class Branchy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 1, 3, padding=1)

        def forward(self, x):
            if float(x.mean()) > -100.0:
                return self.conv(x)
            return -self.conv(x)

    res = export(model=Branchy(), output_dir=tmp_path / "branchy", input_size=(32, 32))
    report = json.loads(res.report_path.read_text())
    assert res.exporter == "torch.onnx.export(dynamo=False)" and report["onnx"]["opset"] >= 17
    assert "data-dependent" in report["onnx"]["dynamo_error"]
    assert "falling back to the TorchScript exporter" in caplog.text
    assert res.parity.passed
