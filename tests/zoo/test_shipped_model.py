"""The shipped model, its samples and the README's main command, end to end and offline."""

from __future__ import annotations

import json

import pytest

from attnseg.cli.export import main as seg_export
from attnseg.models import load_checkpoint
from attnseg.zoo import default_checkpoint, model_card, sample_dir
from tests.conftest import load_script


def test_shipped_checkpoint_loads_with_the_full_contract():
    model, info = load_checkpoint(default_checkpoint())
    assert info.arch == "AttU_Net" and info.task == "binary"
    assert info.input_size == (256, 256)
    assert info.metrics["split"] == "test" and info.metrics["count"] == 100
    assert 0.0 < info.metrics["dice"] <= 1.0
    assert default_checkpoint().stat().st_size < 10 * 2**20  # a few MB (fp16 storage)


def test_bundled_samples_are_test_split_images_with_masks():
    from pathlib import Path

    root = sample_dir()
    images = sorted(p.stem for p in (root / "images").iterdir())
    masks = sorted(p.stem for p in (root / "masks").iterdir())
    assert images == masks and len(images) == 30
    split = json.loads((Path(__file__).resolve().parents[2] / "splits" / "kvasir-seg.json").read_text())["splits"]
    assert set(images) <= set(split["test"])  # never training or calibration images of the model


def test_model_card_states_data_split_command_metrics_and_licence():
    card = model_card()
    for needle in ("Kvasir-SEG", "splits/kvasir-seg.json", "seg-train", "Dice", "research"):
        assert needle in card


def test_model_card_quotes_the_shipped_weights_own_figures():
    """The card is written from the checkpoint (tools/model_card.py): a re-trained model with a
    stale card fails here."""
    _, info = load_checkpoint(default_checkpoint())
    card = model_card()
    m, val = info.metrics, info.metrics["val_metrics"]
    assert f"| {m['dice']:.3f} | {m['jaccard']:.3f} | {m['sensitivity']:.3f} | {m['precision']:.3f} |" in card
    assert f"val Dice {val['dice']:.3f}" in card
    if "epoch" in val:  # selected by a training run (a weight average is not)
        assert f"(epoch {val['epoch']}, val Dice {val['dice']:.3f})" in card


def test_model_card_shows_the_recipe_stored_in_the_weights():
    """tools/ship_model.py stores the whole recipe in the checkpoint; the card shows every step
    of it (tools/recipe.py renders both), so the chain survives its run folders."""
    train_command = load_script("tools/model_card.py").train_command
    recipe_steps = load_script("tools/recipe.py").recipe_steps

    _, info = load_checkpoint(default_checkpoint())
    recipe = info.trained_with["recipe"]
    steps = recipe_steps(recipe, train_command)
    card = model_card()
    assert steps and all(step in card for step in steps)
    assert any(step.startswith("seg-train") for step in steps)
    assert f"`{info.input_interpolation}` interpolation" in card


@pytest.mark.slow
def test_main_job_exports_quantizes_scores_and_times(tmp_path, capsys):
    out = tmp_path / "job"
    assert seg_export(["--device", "CPU", "-o", str(out), "--niter", "4"]) == 0
    printed = capsys.readouterr().out
    assert "OpenVINO INT8" in printed and "Median ms" in printed
    for name in ("model.onnx", "model.xml", "model.bin", "model_int8.xml", "model_int8.bin", "summary.json",
                 "summary.md"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    rows = {r["backend"]: r for r in summary["backends"]}
    assert set(rows) == {"PyTorch FP32 (eager)", "OpenVINO FP32", "OpenVINO INT8"}
    assert summary["parity"]["passed"]
    from attnseg.runtime import Segmenter

    # The OpenVINO rows run as the runtime would: the precision its auto choice measured (now cached).
    used = summary["inference_precision"]
    assert used == {"OpenVINO FP32": Segmenter(out / "model.xml").inference_precision,
                    "OpenVINO INT8": Segmenter(out / "model_int8.xml").inference_precision}
    assert f"FP32 IR {used['OpenVINO FP32']}, INT8 IR {used['OpenVINO INT8']}" in printed
    torch_dice, fp32_dice, int8_dice = (rows[k]["dice"] for k in rows)
    assert abs(fp32_dice - torch_dice) < 0.005  # same model, same images
    assert abs(int8_dice - fp32_dice) < 0.03  # INT8 still segments like FP32 on 30 images
    assert all(r["count"] == 30 and r["latency_median_ms"] > 0 for r in rows.values())
    # A second run into the same folder is refused, the first run's files untouched.
    assert seg_export(["--device", "CPU", "-o", str(out), "--niter", "4"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (out / "model_int8.xml").is_file()


def test_main_job_rejects_an_unknown_device(tmp_path, capsys):
    assert seg_export(["--device", "NPU", "-o", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "NPU" in err and "CPU" in err  # names the available devices
    assert not (tmp_path / "x").exists()
