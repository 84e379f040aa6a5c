"""seg-benchmark compare on a tiny checkpoint: every backend row, every output file."""

from __future__ import annotations

import base64
import csv
import json
from pathlib import Path

import pytest

from attnseg.benchmarking.compare.backends import DEFAULT_BACKENDS, BackendName, parse_backends
from attnseg.cli.benchmark import main
from attnseg.errors import BenchmarkError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def compare_run(tiny_checkpoint, shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("compare") / "report"
    split = Path(__file__).resolve().parents[2] / "splits" / "kvasir-seg.json"
    argv = ["compare", str(tiny_checkpoint), "--data", f"kvasir:{shared_data / 'kvasir-seg'}", "--max-images", "3",
            "--split", f"{split}:test",
            "--rounds", "2", "--iters", "2", "--warmup", "1", "-o", str(out), "--json"]
    return main(argv), out


def test_compare_writes_every_output(compare_run, capsys):
    rc, out = compare_run
    assert rc == 0
    for name in ("compare.md", "compare.csv", "compare.json", "compare.html"):
        assert (out / name).is_file(), name
    data = json.loads((out / "compare.json").read_text())
    names = [b["name"] for b in data["backends"]]
    assert names == [b.value for b in DEFAULT_BACKENDS]
    assert data["accuracy_metric"] == "dice" and data["accuracy_images"] == 3
    assert data["data"].endswith("(test split of " + str(Path(__file__).resolve().parents[2] / "splits" / "kvasir-seg.json") + ")")
    assert data["input_shape"] == [1, 3, 64, 64] and data["baseline"] == "torch_fp32"
    assert data["machine"]["versions"]["torch"] != "not installed"
    assert 0 < data["cpu_share"] <= 1.05 and data["load_average_end"]

    ok = [b for b in data["backends"] if b["status"] == "ok"]
    assert {b["name"] for b in ok} >= {"torch_fp32", "torch_bf16_cl", "onnxruntime", "openvino_fp32",
                                       "openvino_fp32_f32", "openvino_fp16"}
    for b in ok:
        assert b["latency"]["count"] == 4 and len(b["samples_ms"]) == 4 and len(b["cpu_ms"]) == 4
        assert b["cpu_median_ms"] >= 0
        assert b["first_inference_ms"] > 0 and b["prepare_s"] is not None
        assert 0.0 <= b["accuracy"]["value"] <= 1.0 and b["accuracy"]["count"] == 3
        assert b["speedup"] == pytest.approx(
            data["backends"][0]["latency"]["median_ms"] / b["latency"]["median_ms"])
    base = data["backends"][0]
    assert base["speedup"] == 1.0 and base["max_abs_diff"] == 0.0 and base["mask_agreement"] == 1.0
    f32 = {b["name"]: b for b in ok}
    # fp32 runtimes compute the same function: same masks, same Dice
    for name in ("onnxruntime", "openvino_fp32_f32"):
        assert f32[name]["max_abs_diff"] < 1e-3 and f32[name]["compute"] in ("fp32", "f32")
        assert f32[name]["accuracy"]["value"] == pytest.approx(base["accuracy"]["value"], abs=0.02)
    int8 = data["backends"][names.index("openvino_int8")]
    assert int8["status"] in ("ok", "skipped") and (int8["status"] == "ok" or "INT8" in int8["note"])
    if int8["status"] == "ok":
        assert int8["weights"] == "int8" and "calibrated on 128 images of the train split" in int8["note"]
    assert (out / f32["openvino_fp32"]["model_path"]).is_file()


def test_compare_files_agree(compare_run):
    _, out = compare_run
    data = json.loads((out / "compare.json").read_text())
    with open(out / "compare.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["backend"] for r in rows] == [b["name"] for b in data["backends"]]
    for row, b in zip(rows, data["backends"]):
        if b["status"] == "ok":
            assert float(row["median_ms"]) == pytest.approx(b["latency"]["median_ms"])
            assert float(row["accuracy"]) == pytest.approx(b["accuracy"]["value"])
    md = (out / "compare.md").read_text()
    assert "| PyTorch eager fp32 |" in md and "| Dice |" in md.replace(" Dice ", "| Dice |")
    for b in data["backends"]:
        if b["status"] == "ok":
            assert f"{b['latency']['median_ms']:.1f}" in md
    html = (out / "compare.html").read_text()
    assert "http://" not in html and "https://" not in html  # self-contained
    images = html.split("data:image/png;base64,")[1:]
    assert len(images) == 3  # latency distribution, speedup bars, accuracy vs latency
    for img in images:
        assert base64.b64decode(img.split("'", 1)[0])[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_refuses_existing_output_and_bad_options(compare_run, tiny_checkpoint, capsys):
    _, out = compare_run
    assert main(["compare", str(tiny_checkpoint), "-o", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["compare", str(tiny_checkpoint), "--input-size", "60", "64", "-o", str(out) + "x"]) == 2
    assert "multiples of 16" in capsys.readouterr().err
    assert main(["compare", str(out / "missing.pt"), "-o", str(out) + "y"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["compare", str(tiny_checkpoint), "--backends", "tensorrt", "-o", str(out) + "z"]) == 2
    assert "Unknown backend 'tensorrt'" in capsys.readouterr().err
    assert not (out.parent / "reportx").exists() and not (out.parent / "reportz").exists()


def test_parse_backends():
    assert parse_backends(None) == DEFAULT_BACKENDS
    assert BackendName.TORCH_COMPILE in parse_backends(None, with_compile=True)
    assert parse_backends("all") == list(BackendName)
    assert parse_backends("openvino_fp32, torch_fp32,openvino_fp32") == [BackendName.OPENVINO_FP32,
                                                                          BackendName.TORCH_FP32]
    with pytest.raises(BenchmarkError, match="selects no backend"):
        parse_backends(",")


def test_bf16_note_quotes_the_measured_ratio():
    from attnseg.benchmarking import LatencyStats
    from attnseg.benchmarking.compare.result import BackendResult
    from attnseg.benchmarking.compare.runner import _bf16_note

    def row(name, ms):
        return BackendResult(name=name, label=name, latency=LatencyStats.from_samples([ms, ms]))

    rows = [row("openvino_fp32", 700.0), row("openvino_fp32_f32", 350.0)]
    assert _bf16_note(["avx2", "avx512f"], rows) is None
    no_amx = _bf16_note(["avx512_bf16"], rows)
    assert "f32 is 2.00x faster" in no_amx and "measures this once per model and CPU" in no_amx
    amx = _bf16_note(["avx512_bf16", "amx_bf16"], [row("openvino_fp32", 100.0), row("openvino_fp32_f32", 250.0)])
    assert "the bf16 default is 2.50x faster" in amx
    assert "Measured" not in _bf16_note(["avx512_bf16"], rows[:1])  # nothing to compare against
