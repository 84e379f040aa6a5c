"""seg-serve holds one RuntimeOptions: every runtime flag (resize policy and TTA included) reaches
the Segmenter of each served model; no hint means throughput."""

from __future__ import annotations

import pytest

pytest.importorskip("kserve")


def test_runtime_flags_reach_every_served_model(binary_ir):
    from attnseg.cli.serve import build_parser, options_from_args
    from attnseg.runtime.options import TTA, Hint, RuntimeOptions
    from attnseg.serve.server import load_models

    options = options_from_args(build_parser().parse_args(
        [str(binary_ir), "--resize-policy", "letterbox", "--tta", "flip", "--inference-precision", "f32"]))
    assert options.runtime == RuntimeOptions(resize_policy="letterbox", tta="flip", inference_precision="f32")
    (model,) = load_models(options)
    seg = model._segmenter
    assert seg.resize_policy.value == "letterbox" and seg.tta is TTA.FLIP and seg.hint is Hint.THROUGHPUT
    assert seg.inference_precision == "f32"
    (latency,) = load_models(options_from_args(build_parser().parse_args([str(binary_ir), "--hint", "latency"])))
    assert latency._segmenter.hint is Hint.LATENCY and latency._segmenter.tta is TTA.NONE
