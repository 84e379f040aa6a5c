"""inference_precision='auto' measures once, caches per user; the tuned config file beside the IR applies."""

from __future__ import annotations

import json
import shutil

import openvino as ov
import pytest

from attnseg.errors import InputFileError
from attnseg.runtime import Segmenter, autotune
from attnseg.runtime.config_file import read_tuned_config, tuned_config_path, write_tuned_config
from attnseg.user_cache import ENV_CACHE_DIR, cache_root

NATIVE = autotune.candidate_precisions(ov.Core(), "CPU")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "user-cache"
    monkeypatch.setenv(ENV_CACHE_DIR, str(folder))
    return folder


@pytest.fixture
def two_candidates(monkeypatch):
    """f32 and bf16 on any CPU (without native bf16 the plugin runs the bf16 hint as f32): the
    probe and cache mechanism is exercised the same way everywhere."""
    monkeypatch.setattr(autotune, "candidate_precisions", lambda core, device: ["f32", "bf16"])


def _cached_entries(folder):
    return json.loads((folder / autotune.CACHE_NAME).read_text())


def test_candidates_come_from_the_device_capabilities():
    caps = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    assert NATIVE[0] == "f32" and ("bf16" in NATIVE) == ("BF16" in caps)
    assert autotune.candidate_precisions(ov.Core(), "GPU") == []  # GPU/NPU keep their f16 default
    assert autotune.candidate_precisions(ov.Core(), "AUTO:CPU") == []


def test_auto_measures_once_then_reads_the_cache(binary_ir, cache, two_candidates):
    first = Segmenter(binary_ir)
    choice = first.precision_choice
    assert choice.source == "measured" and choice.precision in ("f32", "bf16")
    assert set(choice.medians_ms) == {"f32", "bf16"} and all(v > 0 for v in choice.medians_ms.values())
    assert choice.probe_s is not None and choice.probe_s > 0
    assert f"f32 {choice.medians_ms['f32']:.2f} ms" in choice.reason
    assert first.compiled_model.get_property("INFERENCE_PRECISION_HINT").get_type_name() == first.inference_precision
    (entry,) = _cached_entries(cache).values()
    assert entry["precision"] == choice.precision and entry["openvino"] == ov.get_version()
    assert entry["device_name"] == ov.Core().get_property("CPU", "FULL_DEVICE_NAME")
    assert len(entry["rounds_ms"]["f32"]) == autotune.ROUNDS

    second = Segmenter(binary_ir)
    assert second.precision_choice.source == "cached" and second.precision_choice.probe_s is None
    assert second.precision_choice.precision == choice.precision
    assert second.inference_precision == first.inference_precision
    assert len(_cached_entries(cache)) == 1

    # One decision per model and device: every hint and front end computes in the same precision.
    tput = Segmenter(binary_ir, hint="throughput", num_streams=2)
    assert tput.precision_choice.source == "cached" and tput.inference_precision == first.inference_precision
    assert len(_cached_entries(cache)) == 1


def test_concurrent_first_starts_measure_once(binary_ir, cache, two_candidates):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(3) as pool:
        segs = list(pool.map(lambda _: Segmenter(binary_ir), range(3)))
    sources = sorted(s.precision_choice.source for s in segs)
    assert sources == ["cached", "cached", "measured"]  # the others waited on the lock, then read
    assert len({s.inference_precision for s in segs}) == 1


def test_cache_is_keyed_by_the_model_contents(binary_ir, tmp_path, cache, two_candidates):
    copy = tmp_path / "copy"
    shutil.copytree(binary_ir.parent, copy)
    assert Segmenter(binary_ir).precision_choice.source == "measured"
    assert Segmenter(copy / "model.xml").precision_choice.source == "cached"  # same bytes, other path
    with open(copy / "model.bin", "r+b") as f:  # one weight changes: a different model
        f.seek(-4, 2)
        f.write(b"\x00\x00\x80\x3f")
    assert Segmenter(copy / "model.xml").precision_choice.source == "measured"


def test_a_broken_or_unwritable_cache_costs_a_probe_never_an_error(binary_ir, cache, two_candidates, caplog,
                                                                    monkeypatch):
    cache.mkdir(parents=True)
    (cache / autotune.CACHE_NAME).write_text("{not json")
    assert Segmenter(binary_ir).precision_choice.source == "measured"
    assert "unreadable cache" in caplog.text
    assert Segmenter(binary_ir).precision_choice.source == "cached"  # rewritten as valid JSON

    blocker = cache.parent / "a-file"
    blocker.write_text("")
    monkeypatch.setenv(ENV_CACHE_DIR, str(blocker / "sub"))  # cannot be created: a file is in the way
    seg = Segmenter(binary_ir)
    assert seg.precision_choice.source == "measured" and "Cannot write cache" in caplog.text


def test_cache_folder_follows_env_then_xdg(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_CACHE_DIR, str(tmp_path / "mine"))
    assert cache_root() == tmp_path / "mine"
    monkeypatch.delenv(ENV_CACHE_DIR)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "attnseg"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "attnseg"


def test_no_probe_where_there_is_nothing_to_choose(binary_ir, cache, monkeypatch):
    monkeypatch.setattr(autotune, "candidate_precisions", lambda core, device: ["f32"])
    seg = Segmenter(binary_ir)
    assert seg.precision_choice.source == "only candidate" and seg.inference_precision == "f32"
    assert not (cache / autotune.CACHE_NAME).exists()


def test_tuned_config_file_round_trip_and_segmenter_applies_it(binary_ir, tmp_path, cache):
    model = tmp_path / "tuned"
    shutil.copytree(binary_ir.parent, model)
    xml = model / "model.xml"
    assert read_tuned_config(xml, "CPU") == {}
    props = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": 2,
             "PERFORMANCE_HINT_NUM_REQUESTS": 4}
    path = write_tuned_config(xml, "CPU", props)
    assert path == tuned_config_path(xml) == model / "model.load_config.json"
    assert json.loads(path.read_text()) == {"CPU": {k: str(v) for k, v in props.items()}}  # benchmark_app format
    write_tuned_config(xml, "GPU", {"PERFORMANCE_HINT": "LATENCY"})  # other sections stay
    assert read_tuned_config(xml, "CPU") == {k: str(v) for k, v in props.items()}

    seg = Segmenter(xml)
    cm = seg.compiled_model
    assert seg.hint.value == "throughput" and str(cm.get_property("PERFORMANCE_HINT")) == "THROUGHPUT"
    assert cm.get_property("NUM_STREAMS") == 2
    assert cm.get_property("INFERENCE_PRECISION_HINT").get_type_name() == "f32"
    assert seg.precision_choice.source == "tuned config" and seg.num_requests == 4
    assert not (cache / autotune.CACHE_NAME).exists()  # no probe: the file is the measured choice

    # Arguments win: another hint drops the file's streams; an explicit precision replaces its precision.
    lat = Segmenter(xml, hint="latency", inference_precision="bf16")
    assert str(lat.compiled_model.get_property("PERFORMANCE_HINT")) == "LATENCY"
    assert lat.compiled_model.get_property("NUM_STREAMS") == 1
    assert lat.precision_choice.source == "requested"
    assert Segmenter(xml, num_streams=1).compiled_model.get_property("NUM_STREAMS") == 1

    path.write_text('{"CPU": ["INFERENCE_PRECISION_HINT"]}')
    with pytest.raises(InputFileError, match="model.load_config.json must map device names"):
        Segmenter(xml)
    path.write_text("{")
    with pytest.raises(InputFileError, match="not readable JSON"):
        Segmenter(xml)
