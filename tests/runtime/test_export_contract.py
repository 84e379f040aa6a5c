"""The real thing once: export() a tiny AttU_Net, run it in the runtime, compare with PyTorch."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from attnseg.imaging import read_image, to_model_input
from attnseg.metadata import Normalization
from attnseg.runtime import Segmenter
from tests.runtime._irs import make_net


@pytest.mark.slow
def test_exported_ir_in_runtime_matches_pytorch(tmp_path, kvasir_images):
    torch = pytest.importorskip("torch")
    from attnseg.export import AdvancedExportParameters, export

    net = make_net(seed=5)
    result = export(model=net, output_dir=tmp_path / "exported", input_size=(64, 64), attention_maps=True,
                    classes=["polyp"], advanced=AdvancedExportParameters(parity_batches=1))
    # CPUs with bf16 units compute in bf16 by default (4-5% of this random model's pixels sit
    # close enough to the threshold to flip); f32 makes the comparison with PyTorch exact.
    seg = Segmenter(result.xml_path, config={"INFERENCE_PRECISION_HINT": "f32"})
    assert seg.metadata.preprocessing_embedded and seg.input_size == (64, 64)
    assert seg.classes == ["background", "polyp"]
    assert seg.attention_names == ["Att5", "Att4", "Att3", "Att2"]
    net.return_attention = True
    for path in kvasir_images[:3]:
        bgr = read_image(path)
        h, w = bgr.shape[:2]
        got = seg.predict(bgr)
        with torch.no_grad():
            logits, *maps = net(torch.from_numpy(to_model_input(bgr, (64, 64), Normalization())))
        ref = cv2.resize(logits[0, 0].numpy(), (w, h), interpolation=cv2.INTER_LINEAR) > 0
        assert (got.mask == ref).mean() > 0.999
        for name, amap in zip(seg.attention_names, maps):
            ref_map = cv2.resize(amap[0, 0].numpy(), (w, h), interpolation=cv2.INTER_LINEAR)
            np.testing.assert_allclose(got.attention[name], ref_map, atol=2e-3)
