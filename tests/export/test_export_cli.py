"""``seg-export`` end to end: a bare reference state_dict, raw input, probabilities, batch 2, --json."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from attnseg.cli.export import main
from attnseg.models import create_model
from tests.export.export_helpers import centred

ov = pytest.importorskip("openvino")


def test_seg_export_bare_state_dict_raw_input_json(tmp_path, capsys):
    model = centred(create_model("U_Net", base_width=4))
    sd = tmp_path / "reference.pth"
    torch.save(model.state_dict(), sd)  # as the reference implementation saves them
    out = tmp_path / "out"
    code = main([str(sd), "--arch", "U_Net", "-o", str(out), "--input-size", "64", "64", "--batch", "2",
                 "--raw-input", "--output-kind", "probabilities", "--threshold", "0.4", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    assert result["parity"]["passed"] and result["exporter"].startswith("torch.onnx.export")
    meta = result["model"]
    assert meta["input_layout"] == "NCHW" and meta["input_dtype"] == "f32" and meta["batch"] == 2
    assert meta["preprocessing_embedded"] is False and meta["threshold"] == 0.4
    # a bare reference state_dict normalizes RGB to [-1, 1] (mean 0.5, std 0.5)
    assert meta["normalization"]["mean"] == [0.5, 0.5, 0.5]
    compiled = ov.Core().compile_model(str(out / "model.xml"), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    assert list(compiled.input(0).get_shape()) == [2, 3, 64, 64]
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)
    got = compiled(x)[compiled.output("probabilities")]
    with torch.no_grad():  # binary pair [1 - q, q], q = sigmoid(logit - logit(threshold))
        q = torch.sigmoid(model(torch.from_numpy(x)) - float(np.log(0.4 / 0.6))).numpy()
    assert got.shape == (2, 2, 64, 64)
    assert np.abs(got[:, 1:] - q).max() < 1e-5 and np.abs(got[:, :1] - (1 - q)).max() < 1e-5
