"""``--ema DECAY``: the weight average is what is validated and saved as best.pt; the raw weights
and the average both survive ``--resume``."""

from __future__ import annotations

import json

import torch

from attnseg.cli.train import main as seg_train
from attnseg.models.checkpoint import read_checkpoint_file
from attnseg.train.ema import WeightAverage


def _args(tiny_kvasir, out, epochs, *extra):
    return ["--data", f"kvasir:{tiny_kvasir}", "-o", str(out), "--base-width", "4", "--input-size", "64", "64",
            "--epochs", str(epochs), "--batch-size", "4", "--test-count", "3", "--val-fraction", "0.2",
            "--workers", "0", "--threads", "1", "--ema", "0.9", "-q", *extra]


def test_weight_average_follows_the_ema_formula():
    model = torch.nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.fill_(0.0)
    avg = WeightAverage(model, decay=0.5)
    with torch.no_grad():
        model.weight.fill_(1.0)
    avg.update(model)  # warm-up decay min(0.5, 2/11) = 2/11
    assert torch.allclose(avg.module.weight, torch.full((1, 2), 9 / 11))
    avg.update(model)  # min(0.5, 3/12) = 0.25
    assert torch.allclose(avg.module.weight, torch.full((1, 2), 0.25 * 9 / 11 + 0.75))
    restored = WeightAverage(model, decay=0.5, state=avg.state())
    assert restored.updates == 2 and torch.equal(restored.module.weight, avg.module.weight)


def test_best_is_the_average_and_resume_keeps_both(tiny_kvasir, tmp_path):
    out = tmp_path / "run"
    assert seg_train(_args(tiny_kvasir, out, 2)) == 0
    last = read_checkpoint_file(out / "last.pt")
    state = last["extra"]["train_state"]
    steps = state["ema"]["updates"]
    assert steps > 0
    # last.pt holds the raw weights (training continues from them) and the average beside them
    raw, average = last["state_dict"], state["ema"]["weights"]
    name = next(k for k in raw if k.endswith("weight") and raw[k].dim() == 4)
    assert not torch.equal(raw[name], average[name])
    history = json.loads((out / "history.json").read_text())
    best = max(history, key=lambda r: r["val_dice"])
    best_ckpt = read_checkpoint_file(out / "best.pt")
    assert best_ckpt["metrics"]["epoch"] == best["epoch"]
    if best["epoch"] == 2:  # the best epoch's weights are the average, not the raw weights
        assert torch.allclose(best_ckpt["state_dict"][name].float(), average[name].float())
    assert seg_train(_args(tiny_kvasir, out, 3, "--resume", str(out / "last.pt"))) == 0
    resumed = read_checkpoint_file(out / "last.pt")["extra"]["train_state"]["ema"]
    assert resumed["updates"] == steps + steps // 2  # continued counting, not restarted


def test_ema_out_of_range_is_one_clear_error(tiny_kvasir, tmp_path, capsys):
    assert seg_train(_args(tiny_kvasir, tmp_path / "o", 1)[:-3] + ["--ema", "1.5", "-q"]) == 2
    err = capsys.readouterr().err
    assert "--ema must be a finite number > 0 and <= 0.99999, got 1.5" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_tile_crop_chance_out_of_range_is_one_clear_error(tiny_kvasir, tmp_path, capsys):
    assert seg_train(_args(tiny_kvasir, tmp_path / "o", 1)[:-3] + ["--tile-crop-prob", "-0.1", "-q"]) == 2
    err = capsys.readouterr().err
    assert "--tile-crop-prob must be" in err and "-0.1" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()
