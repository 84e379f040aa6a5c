"""seg-eval scores a checkpoint as its exported IR is deployed: the same codec prepares the image
(letterbox padding included) and decides the network's output (the checkpoint's threshold)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from attnseg.imaging import read_image
from attnseg.metadata import Normalization


@pytest.mark.parametrize(("fixture", "policy", "threshold"), [("letterbox_ir", "letterbox", 0.5),
                                                              ("binary_ir", "stretch", 0.5)])
def test_evaluation_masks_equal_the_deployed_irs(fixture, policy, threshold, request, kvasir_images):
    from attnseg.runtime import Segmenter
    from attnseg.train.evaluate import checkpoint_codec, predict_with_codec
    from tests.runtime._irs import make_net

    net = make_net(seed=0)  # the weights every runtime test IR is converted from
    info = SimpleNamespace(classes=["polyp"], normalization=Normalization(), threshold=threshold,
                           resize_policy=policy, in_channels=3)
    codec = checkpoint_codec(info, (64, 64))
    seg = Segmenter(request.getfixturevalue(fixture), inference_precision="f32")
    for path in kvasir_images[:3]:
        bgr = read_image(path)
        got, deployed = predict_with_codec(net, bgr, codec), seg.predict(bgr).mask
        assert got.shape == bgr.shape[:2] and (got == deployed).mean() > 0.999
    if policy == "letterbox":  # the old stretched evaluation scores a different mask than the one deployed
        stretched = checkpoint_codec(SimpleNamespace(**{**vars(info), "resize_policy": "stretch"}), (64, 64))
        assert (predict_with_codec(net, bgr, stretched) != deployed).mean() > 0.01
