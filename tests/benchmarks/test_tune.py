"""seg-benchmark --tune: the search, the load_config file beside the IR, and Segmenter reading it back."""

from __future__ import annotations

import json
import shutil

import pytest

from attnseg.benchmarking import tune as tune_mod
from attnseg.cli.benchmark import main
from attnseg.runtime import Segmenter


@pytest.fixture
def ir_copy(exported_ir, tmp_path, monkeypatch):
    monkeypatch.setattr(tune_mod, "ROUND_BUDGET_S", 0.01)  # a few inferences per round: the mechanism, fast
    monkeypatch.setenv("ATTNSEG_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "ir"
    shutil.copytree(exported_ir.parent, folder)
    return folder / exported_ir.name


def test_throughput_search_writes_the_winner_and_segmenter_applies_it(ir_copy, capsys):
    assert main(["--tune", str(ir_copy), "-hint", "tput", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    cands = report["candidates"]
    keys = [(c["properties"].get("INFERENCE_PRECISION_HINT"), c["streams"], c["nireq"]) for c in cands]
    assert len(keys) == len(set(keys)) >= 2  # de-duplicated by what the device really set
    assert {c["nireq"] // c["streams"] for c in cands} == {1, 2}  # one and two requests per stream
    assert all(len(c["rounds_ms"]) == tune_mod.ROUNDS and c["median_ms"] > 0 for c in cands)
    winner = next(c for c in cands if c["label"] == report["winner"])

    path = ir_copy.with_name(ir_copy.stem + ".load_config.json")
    assert report["config_path"] == str(path)
    written = json.loads(path.read_text())
    assert list(written) == ["CPU"] and written["CPU"] == report["properties"] == winner["properties"]
    assert written["CPU"]["PERFORMANCE_HINT"] == "THROUGHPUT"
    assert written["CPU"]["NUM_STREAMS"] == str(winner["streams"])
    assert f"-load_config {path} -api async -nireq {winner['nireq']}" in report["benchmark_app"]

    seg = Segmenter(ir_copy)  # no arguments: the tuned file decides
    cm = seg.compiled_model
    assert str(cm.get_property("PERFORMANCE_HINT")) == "THROUGHPUT" and seg.hint.value == "throughput"
    assert cm.get_property("NUM_STREAMS") == winner["streams"]
    precision = written["CPU"].get("INFERENCE_PRECISION_HINT")
    if precision:
        assert cm.get_property("INFERENCE_PRECISION_HINT").get_type_name() == precision
        assert seg.precision_choice.source == "tuned config"
    assert seg.num_requests == winner["nireq"]


def test_latency_search_varies_only_the_precision(ir_copy, capsys):
    assert main(["--tune", str(ir_copy)]) == 0
    printed = capsys.readouterr().out
    assert "for latency" in printed and "Winner:" in printed and "-api sync" in printed
    written = json.loads(ir_copy.with_name(ir_copy.stem + ".load_config.json").read_text())["CPU"]
    assert written["PERFORMANCE_HINT"] == "LATENCY" and written["NUM_STREAMS"] == "1"
    assert str(Segmenter(ir_copy).compiled_model.get_property("PERFORMANCE_HINT")) == "LATENCY"


def test_tune_refuses_hints_it_cannot_optimize(ir_copy, capsys):
    assert main(["--tune", str(ir_copy), "-hint", "none"]) == 2
    assert "--tune optimizes latency or throughput" in capsys.readouterr().err
    assert not ir_copy.with_name(ir_copy.stem + ".load_config.json").exists()
