"""benchmarks/proxy_compare.py on the stored proxy reports of issue 26: the soup that was not
shipped is lower on exactly one row (tiled), a model compared with itself is level everywhere,
and reports over other images are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import load_script

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "benchmarks" / "results"
SHIPPED = f"shipped={RESULTS / 'resize_policies_endoscope' / 'resize_policies.json'}#previous"
SOUP = f"soup={RESULTS / 'resize_policies_ema' / 'soup012w.json'}"


@pytest.fixture(scope="module")
def bench():
    return load_script("benchmarks/proxy_compare.py")


def test_the_unshipped_soup_is_lower_only_tiled(bench, tmp_path, capsys):
    assert bench.main([SHIPPED, SOUP, "--out", str(tmp_path)]) == 1
    doc = json.loads((tmp_path / "proxy_compare.json").read_text())
    assert doc["worse"] == ["tiled"]
    rows = {r["condition"]: r for r in doc["rows"]}
    assert len(rows) == 17
    assert rows["tiled"]["old"] == pytest.approx(0.661, abs=5e-4) and rows["tiled"]["new"] == pytest.approx(0.657, abs=5e-4)
    lo, hi = rows["underexposed"]["interval"]
    assert 0 < lo < rows["underexposed"]["delta"] < hi  # +11 points, clear of zero
    assert any(line.startswith("| tiled | 0.661 | 0.657 | -0.004") for line in doc["table"])
    assert "lower than shipped on 1 of 17 rows: tiled" in capsys.readouterr().out


def test_a_model_against_itself_is_level_and_passes(bench, tmp_path):
    assert bench.main([SHIPPED, SHIPPED.replace("shipped=", "again="), "--out", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "proxy_compare.json").read_text())
    assert doc["worse"] == [] and all(r["delta"] == 0 and r["interval"] == [0, 0] for r in doc["rows"])


def test_reports_of_other_images_are_refused(bench, tmp_path):
    other = json.loads((RESULTS / "resize_policies_ema" / "soup012w.json").read_text())
    other["images"] = 50
    path = tmp_path / "other.json"
    path.write_text(json.dumps(other))
    with pytest.raises(SystemExit, match="different images"):
        bench.main([SHIPPED, f"other={path}"])
    with pytest.raises(SystemExit, match="say which with #name"):
        bench.main([SHIPPED.split("#")[0], SOUP])


def test_a_file_that_is_not_a_report_is_one_clear_error(bench, tmp_path):
    (tmp_path / "x.json").write_text("[1, 2]")
    for path in (tmp_path / "missing.json", tmp_path / "x.json"):
        with pytest.raises(SystemExit, match="is not a benchmarks/resize_policies.py report"):
            bench.main([SHIPPED, f"new={path}"])
