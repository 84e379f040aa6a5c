"""Issue 24: ``--via torch`` with a mask or probabilities head (raw input too) passes parity;
the network's logits stay reachable by name inside the IR."""

from __future__ import annotations

import pytest

from tests.runtime._irs import make_net


@pytest.mark.parametrize(("output", "embedded"), [("mask", True), ("probabilities", True), ("mask", False)])
def test_torch_route_with_every_output_head_passes_parity(tmp_path, kvasir_images, output, embedded):
    pytest.importorskip("torch")
    from attnseg.export import AdvancedExportParameters, export
    from attnseg.runtime import Segmenter

    res = export(model=make_net(seed=5), output_dir=tmp_path / "ir", input_size=(64, 64), classes=["polyp"],
                 via="torch",
                 advanced=AdvancedExportParameters(output=output, embed_preprocessing=embedded, parity_batches=1))
    ov_figures = [b for b in res.parity.backends if b.backend == "openvino"]
    assert res.parity.passed and ov_figures and ov_figures[0].equal_pixels > 0.999
    seg = Segmenter(res.xml_path, inference_precision="f32")
    mask = seg.predict(kvasir_images[0]).mask
    assert set(mask.ravel().tolist()) <= {0, 1} and 0 < mask.mean() < 1
