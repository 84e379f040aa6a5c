"""The stage recorder: the timing keys reports, the CLI and tests read, and what failures leave."""

from __future__ import annotations

import time

import pytest

from attnseg.stages import StageRecorder


def _busy(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_a_stage_records_its_wall_seconds_under_the_suffixed_key():
    rec = StageRecorder()
    with rec.stage("onnx"):
        time.sleep(0.05)
    assert list(rec.timings) == ["onnx_s"]
    assert 0.04 <= rec.timings["onnx_s"] < 1.0


def test_cpu_seconds_come_right_after_the_wall_seconds():
    rec = StageRecorder()
    with rec.stage("quantize", cpu=True):
        _busy(0.05)
        time.sleep(0.05)  # wall time that is not CPU time
    assert list(rec.timings) == ["quantize_s", "quantize_cpu_s"]
    assert rec.timings["quantize_cpu_s"] >= 0.04
    assert rec.timings["quantize_s"] >= rec.timings["quantize_cpu_s"] + 0.04


def test_nested_stages_each_record_their_span_inner_first():
    rec = StageRecorder()
    with rec.stage("convert"):
        with rec.stage("to_ir"):
            time.sleep(0.03)
        time.sleep(0.03)
    assert list(rec.timings) == ["to_ir_s", "convert_s"]
    assert rec.timings["convert_s"] >= rec.timings["to_ir_s"] + 0.02


def test_a_stage_that_raises_records_nothing_and_the_error_passes_through():
    rec = StageRecorder()
    with rec.stage("load"):
        pass
    with pytest.raises(ValueError, match="bad input"), rec.stage("parity", cpu=True):
        raise ValueError("bad input")
    assert list(rec.timings) == ["load_s"]


def test_an_outer_stage_survives_a_failed_inner_one_that_was_handled():
    rec = StageRecorder()
    with rec.stage("outer"), pytest.raises(KeyError), rec.stage("inner"):
        raise KeyError("x")
    assert list(rec.timings) == ["outer_s"]


def test_a_repeated_stage_adds_up():
    rec = StageRecorder()
    for _ in range(3):
        with rec.stage("round"):
            time.sleep(0.02)
    assert list(rec.timings) == ["round_s"]
    assert rec.timings["round_s"] >= 0.05


def test_total_counts_from_the_recorder_creation_and_returns_the_same_dict():
    timings = {"export_s": 1.5}  # a caller's dict is filled in place, earlier keys first
    rec = StageRecorder(timings)
    time.sleep(0.03)
    with rec.stage("load"):
        pass
    out = rec.total()
    assert out is timings is rec.timings
    assert list(out) == ["export_s", "load_s", "total_s", "total_cpu_s"]
    assert out["export_s"] == 1.5 and out["total_s"] >= 0.03 and out["total_cpu_s"] >= 0.0


def test_an_empty_suffix_keeps_bare_names_and_add_takes_outside_figures():
    rec = StageRecorder(suffix="")
    with rec.stage("export_fp32"):
        pass
    rec.add("int8", 2.0)
    rec.add("int8", 0.5)
    assert list(rec.timings) == ["export_fp32", "int8"] and rec.timings["int8"] == 2.5


def test_importing_the_recorder_pulls_in_nothing_heavy():
    import subprocess
    import sys

    code = ("import sys, attnseg.stages; heavy = {'torch', 'openvino', 'nncf', 'onnx', 'numpy'} & set(sys.modules); "
            "print(sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
