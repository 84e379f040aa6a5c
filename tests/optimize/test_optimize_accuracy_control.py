"""Accuracy-controlled quantization end to end, with the project's Dice as NNCF's validation_fn.

The validation masks are the FP32 IR's own masks, so the FP32 IR scores exactly 1.0 and any
change the quantizers make is a measurable drop: a zero budget cannot be met within one
reverted group, a 20-point budget is met at once.
"""

from __future__ import annotations

import json

import pytest

from attnseg.metadata import read_rt_info
from tests.optimize._optimize_models import copy_ir

pytestmark = pytest.mark.slow


def test_budget_that_cannot_be_met_keeps_the_best_model(fp32_ir, calib_dir, agreement_dir, tmp_path, capsys):
    from attnseg.cli.optimize import BUDGET_NOT_MET, main

    xml = copy_ir(fp32_ir, tmp_path / "m")
    code = main([str(xml), "--calibration", str(calib_dir), "--validation", str(agreement_dir), "--max-drop", "0",
                 "--max-iterations", "1", "--latency-runs", "0", "--json"])
    out, err = capsys.readouterr()
    assert code == BUDGET_NOT_MET == 3
    assert "max drop 0.0000 not met: reached" in err and "best model found was kept" in err
    d = json.loads(out)
    assert d["budget_met"] is False and d["precision"] == "int8_acq"
    acc, ac = d["accuracy"], d["accuracy"]["accuracy_control"]
    assert acc["max_drop"] == 0.0 and acc["met"] is False and acc["before"] == pytest.approx(1.0)
    assert 0 < acc["drop"] < 0.3
    # The kept model is the better of NNCF's result and the fully quantized model.
    assert acc["after"] == pytest.approx(max(ac["full_int8_metric"], ac["accuracy_controlled_metric"]))
    assert ac["quantizers_full"] > 10 and ac["kept"] in ("accuracy-controlled", "fully quantized")
    assert ac["quantizers_final"] == d["quantizers"] == ac["quantizers_full"] - ac["reverted_quantizers"]
    assert any("not met" in w for w in d["warnings"])
    written = xml.parent / "model_int8.xml"
    assert written.is_file() and (xml.parent / "model_int8_report.json").is_file()
    import openvino as ov

    assert read_rt_info(ov.Core().read_model(str(written))).precision == "int8_acq"


def test_budget_met_with_the_gates_ignored(fp32_ir, calib_dir, agreement_dir, tmp_path):
    import openvino as ov

    from attnseg.optimize import AdvancedQuantizationParameters, quantize
    from attnseg.runtime import Segmenter

    xml = copy_ir(fp32_ir, tmp_path / "m")
    r = quantize(xml, tmp_path / "out" / "acq.xml", calibration=calib_dir, validation=agreement_dir,
                 max_drop=0.2, quiet=True, advanced=AdvancedQuantizationParameters(ignore_gates=True,
                                                                                   latency_runs=2))
    assert r.output_xml == tmp_path / "out" / "acq.xml" and r.report_md == tmp_path / "out" / "acq_report.md"
    assert r.budget_met is True and r.precision == "int8_acq"
    assert r.accuracy.after >= 0.8 and r.accuracy.drop <= 0.2
    assert r.accuracy.accuracy_control["reverted_quantizers"] == 0
    model = ov.Core().read_model(str(r.output_xml))
    kinds = {op.get_friendly_name(): op.get_type_name() for op in model.get_ordered_ops()}
    assert sorted(kinds[n] for n in r.ignored.nodes) == ["Multiply"] * 4 + ["Sigmoid"] * 4
    fq_after_sigmoid = [op for op in model.get_ordered_ops() if op.get_type_name() == "FakeQuantize"
                        and op.input_value(0).get_node().get_type_name() == "Sigmoid"]
    assert not fq_after_sigmoid, "the gate's psi must stay in floating point"
    assert read_rt_info(model).extra["optimization"]["ignored"]["gates"] is True
    assert Segmenter(r.output_xml).predict(min((agreement_dir / "images").iterdir())).mask.any()
