"""Opening an IR: metadata from rt_info or the JSON beside it, devices, hints, clear errors."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

from attnseg.devices import available_devices, validate_device
from attnseg.errors import DeviceError, InputFileError, InvalidOptionError, ModelConfigError
from attnseg.metadata import ModelMetadata
from attnseg.runtime import Hint, Segmenter


def test_properties_come_from_the_ir(embedded_att_ir):
    seg = Segmenter(embedded_att_ir.parent)  # a folder with one model.xml works too
    assert seg.model_path == embedded_att_ir
    assert seg.metadata.task == "binary" and seg.metadata.preprocessing_embedded
    assert seg.classes == ["background", "polyp"]
    assert seg.input_size == (64, 64)
    assert seg.device == "CPU" and seg.hint is Hint.LATENCY
    assert seg.num_requests >= 1
    assert "Segmenter(" in repr(seg)


def test_metadata_falls_back_to_json_beside_the_xml(multiclass_ir, tmp_path):
    xml = tmp_path / "nort" / "model.xml"
    xml.parent.mkdir()
    text = multiclass_ir.read_text()
    stripped = re.sub(r"<attnseg>.*?</attnseg>", "", text, flags=re.DOTALL)
    assert stripped != text
    xml.write_text(stripped)
    shutil.copy(multiclass_ir.with_suffix(".bin"), xml.with_suffix(".bin"))
    meta = ModelMetadata.read_json(multiclass_ir.with_suffix(".json"))
    meta.classes = ["bg", "a", "b"]  # proves these names come from the JSON
    meta.write_json(xml.with_suffix(".json"))
    seg = Segmenter(xml)
    assert seg.classes == ["bg", "a", "b"] and seg.metadata.task == "multiclass"
    assert seg.predict(_gray(40, 30)).mask.shape == (40, 30)
    meta.task = "pixel_classification"
    meta.write_json(xml.with_suffix(".json"))
    with pytest.raises(ModelConfigError, match="binary or multiclass"):
        Segmenter(xml)
    xml.with_suffix(".json").unlink()
    with pytest.raises(InputFileError, match="no attnseg metadata"):
        Segmenter(xml)
    xml.with_suffix(".json").write_text("{not json")
    with pytest.raises(InputFileError, match="not valid attnseg metadata"):
        Segmenter(xml)


def _gray(h, w):
    return np.full((h, w), 128, np.uint8)


def test_missing_and_odd_model_files(binary_ir, tmp_path):
    with pytest.raises(InputFileError, match="does not exist"):
        Segmenter(tmp_path / "nope.xml")
    with pytest.raises(InputFileError, match="found: none"):
        Segmenter(tmp_path)
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"\x08\x07")
    with pytest.raises(InputFileError, match="seg-export"):
        Segmenter(onnx)
    lonely = tmp_path / "lonely" / "model.xml"
    lonely.parent.mkdir()
    shutil.copy(binary_ir, lonely)
    with pytest.raises(InputFileError, match=r"model\.bin are missing"):
        Segmenter(lonely)
    bad = tmp_path / "bad" / "model.xml"
    bad.parent.mkdir()
    bad.write_text("<net><layers><oops></net>")
    bad.with_suffix(".bin").write_bytes(b"")
    with pytest.raises(InputFileError, match="not a readable OpenVINO IR") as info:
        Segmenter(bad)
    assert "\n" not in str(info.value)


def test_devices_hints_and_config(binary_ir, tmp_path):
    missing = "GPU.7"
    with pytest.raises(DeviceError, match="Available devices: .*CPU") as info:
        Segmenter(binary_ir, device=missing)
    assert missing in str(info.value)
    with pytest.raises(InvalidOptionError, match="hint"):
        Segmenter(binary_ir, hint="fastest")
    with pytest.raises(InvalidOptionError, match="num_streams"):
        Segmenter(binary_ir, num_streams=0)
    seg = Segmenter(binary_ir, device="cpu", hint="throughput", num_streams=2,
                    config={"INFERENCE_NUM_THREADS": 2})
    assert seg.hint is Hint.THROUGHPUT
    assert int(seg.compiled_model.get_property("NUM_STREAMS")) == 2
    assert int(seg.compiled_model.get_property("INFERENCE_NUM_THREADS")) == 2
    assert seg.num_requests == 2
    auto = Segmenter(binary_ir, device="AUTO")
    assert auto.predict(_gray(20, 20)).mask.shape == (20, 20)


def test_cache_dir_is_used_and_created(binary_ir, tmp_path):
    cache = tmp_path / "ov-cache" / "nested"
    seg = Segmenter(binary_ir, cache_dir=cache)
    assert cache.is_dir() and any(cache.iterdir())  # the compiled blob was cached
    again = Segmenter(binary_ir, cache_dir=cache)  # loads from the cache
    assert (again.predict(_gray(64, 64)).mask == seg.predict(_gray(64, 64)).mask).all()


def test_validate_device_rules():
    avail = available_devices()
    assert "CPU" in avail
    assert validate_device(" cpu ") == "CPU"
    for ok in ("AUTO", "AUTO:CPU", "AUTO:-CPU", "HETERO:CPU", "MULTI:CPU", "BATCH:CPU(4)"):
        assert validate_device(ok) == ok
    for bad, words in [("HETERO", "needs a device list"), ("MULTI:CPU,XPU9", "XPU9"),
                       ("", "No device name"), ("NPU.42", "NPU.42")]:
        with pytest.raises(DeviceError, match=words) as info:
            validate_device(bad)
        assert "CPU" in str(info.value)


def test_metadata_json_round_trip_matches_rt_info(binary_ir):
    import openvino as ov

    from attnseg.metadata import read_rt_info

    from_rt = read_rt_info(ov.Core().read_model(str(binary_ir)))
    assert from_rt == ModelMetadata.read_json(binary_ir.with_suffix(".json"))


def test_explicit_precision_and_config_win_over_auto(binary_ir):
    import openvino as ov

    from attnseg.runtime.autotune import resolve_precision

    with pytest.raises(InvalidOptionError, match="Unknown inference precision 'int4'; use one of auto, default, f32"):
        resolve_precision(ov.Core(), "CPU", binary_ir, "int4", {}, lambda p: None)
    f32 = Segmenter(binary_ir, inference_precision="F32")
    assert f32.inference_precision == "f32" and f32.precision_choice.source == "requested"
    native_bf16 = "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    forced = Segmenter(binary_ir, inference_precision="f32", config={"INFERENCE_PRECISION_HINT": "bf16"})
    assert forced.inference_precision == ("bf16" if native_bf16 else "f32")  # without bf16 the plugin keeps f32
    assert forced.precision_choice.source == "config"
    default = str(ov.Core().compile_model(str(binary_ir), "CPU").get_property("INFERENCE_PRECISION_HINT")
                  .get_type_name())
    dflt = Segmenter(binary_ir, inference_precision="default")
    assert dflt.inference_precision == default and dflt.precision_choice.precision is None
