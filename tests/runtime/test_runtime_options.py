"""RuntimeOptions: one object for every runtime setting, taken whole by Segmenter."""

from __future__ import annotations

import json

import pytest

from attnseg.errors import InputFileError, InvalidOptionError
from attnseg.runtime import RuntimeOptions, Segmenter
from attnseg.runtime.options import TTA, Hint


def test_values_are_normalized_and_checked():
    opts = RuntimeOptions(device=" CPU ", hint="tput", num_streams="2", inference_precision="BF16",
                          resize_policy="Letterbox", tta="flip")
    assert (opts.device, opts.hint, opts.num_streams) == ("CPU", Hint.THROUGHPUT, 2)
    assert (opts.inference_precision, opts.resize_policy, opts.tta) == ("bf16", "letterbox", TTA.FLIP)
    assert opts.to_dict()["hint"] == "throughput" and opts.to_dict()["tta"] == "flip"
    for bad in ({"inference_precision": "fp64"}, {"hint": "fast"}, {"num_streams": 0}, {"resize_policy": "crop"},
                {"tta": "rotate"}, {"device": " "}):
        with pytest.raises(InvalidOptionError):
            RuntimeOptions(**bad)


def test_segmenter_takes_the_options_whole(binary_ir):
    seg = Segmenter(binary_ir, options=RuntimeOptions(resize_policy="letterbox", tta="flip", num_requests=3))
    assert seg.resize_policy.value == "letterbox" and seg.tta is TTA.FLIP and seg.num_requests == 3
    assert seg.options.num_requests == 3
    same = Segmenter(binary_ir, resize_policy="letterbox", tta="flip")
    assert same.options == RuntimeOptions(resize_policy="letterbox", tta="flip")
    with pytest.raises(InvalidOptionError, match="not both"):
        Segmenter(binary_ir, hint="latency", options=RuntimeOptions())


def test_config_file_section_for_the_device_applies(binary_ir, tmp_path):
    path = tmp_path / "props.json"
    path.write_text(json.dumps({"CPU": {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT_NUM_REQUESTS": "2"},
                                "GPU": {"INFERENCE_PRECISION_HINT": "f16"}}))
    seg = Segmenter(binary_ir, options=RuntimeOptions(config_file=str(path), inference_precision="bf16"))
    assert seg.inference_precision == "f32"  # a file's property is explicit config: it wins
    assert seg.num_requests == 2
    with pytest.raises(InputFileError, match="does not exist"):
        Segmenter(binary_ir, options=RuntimeOptions(config_file=str(tmp_path / "missing.json")))
