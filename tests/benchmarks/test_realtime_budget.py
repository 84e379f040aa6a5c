"""benchmarks/realtime_budget.py runs end to end on a tiny checkpoint and real Kvasir-SEG images:
one export, one NNCF INT8 model, every TTA mode timed, Dice of every IR, a report naming the CPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import load_script

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_reports_speed_and_dice_per_ir_and_tta(tiny_checkpoint, shared_data, tmp_path):
    bench = load_script("benchmarks/realtime_budget.py")
    out = tmp_path / "report"
    rc = bench.main([f"tiny={tiny_checkpoint}", "--data", f"kvasir:{shared_data / 'kvasir-seg'}",
                     "--split", str(REPO / "splits" / "kvasir-seg.json"), "--calibration", "4", "--images", "2",
                     "--rounds", "2", "--score-limit", "3", "--tta", "none,flip", "--out", str(out)])
    assert rc == 0
    report = json.loads((out / "realtime_budget.json").read_text())
    keys = [(r["model"], r["ir"], r["tta"]) for r in report["rows"]]
    assert keys == [("tiny", "fp32", "none"), ("tiny", "fp32", "flip"), ("tiny", "int8", "none"), ("tiny", "int8", "flip")]
    for row in report["rows"]:
        assert len(row["runs"]) == 2 and row["images_per_s"] > 0
        assert row["dice"] is None or 0.0 <= row["dice"] <= 1.0
    assert all(r["dice"] is not None for r in report["rows"])  # "none" and the last TTA mode are scored
    md = (out / "realtime_budget.md").read_text()
    assert "| tiny | int8 | flip |" in md and "CPU:" in md and "realtime_budget.py" in md
