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


def test_seg_eval_scores_an_exported_model_with_the_runtime_flags(binary_ir, shared_data, tmp_path, capsys):
    """seg-eval MODEL.xml runs the IR through a Segmenter made from the generated runtime flags; the
    data grammar takes a bare folder too; runtime flags on a torch checkpoint are refused."""
    import json
    import shutil

    from attnseg.cli.evaluate import main

    folder = tmp_path / "pairs"
    for sub in ("images", "masks"):
        (folder / sub).mkdir(parents=True)
        for src in sorted((shared_data / "kvasir-seg" / sub).iterdir())[:2]:
            shutil.copy(src, folder / sub / src.name)
    assert main([str(binary_ir), "--data", str(folder), "--split", "all", "-d", "CPU",
                 "--inference-precision", "f32", "--tta", "flip", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["count"] == 2 and out["task"] == "binary" and 0.0 <= out["metrics"]["dice"] <= 1.0
    assert main([str(tmp_path / "some.pt"), "--data", str(folder), "--split", "all", "--hint", "latency"]) == 2
    assert "run exported models" in capsys.readouterr().err
