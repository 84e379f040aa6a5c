"""A real (tiny) training run on real Kvasir-SEG images: files, contract, resume, seg-eval."""

from __future__ import annotations

import json

import pytest

from attnseg.cli.evaluate import main as seg_eval
from attnseg.cli.train import main as seg_train
from attnseg.models import load_checkpoint
from attnseg.models.checkpoint import read_checkpoint_file


@pytest.fixture(scope="module")
def run(tiny_kvasir, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    code = seg_train(["--data", f"kvasir:{tiny_kvasir}", "-o", str(out), "--base-width", "4", "--input-size", "64",
                      "64", "--epochs", "2", "--batch-size", "4", "--test-count", "3", "--val-fraction", "0.2",
                      "--workers", "0", "--threads", "1", "-q"])
    assert code == 0
    return out


def test_run_writes_checkpoints_history_and_split(run):
    for name in ("best.pt", "last.pt", "history.csv", "history.json", "curves.png", "split.json"):
        assert (run / name).is_file(), name
    history = json.loads((run / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2]
    assert {"train_loss", "val_loss", "val_dice", "val_jaccard"} <= set(history[0])
    split = json.loads((run / "split.json").read_text())
    assert split["counts"]["test"] == 3 and split["counts"]["val"] == 3


def test_checkpoint_carries_the_full_contract(run):
    model, info = load_checkpoint(run / "best.pt")
    assert info.arch == "AttU_Net" and info.arch_kwargs["base_width"] == 4
    assert info.input_size == (64, 64) and info.classes and info.task == "binary"
    assert 0.0 <= info.metrics["dice"] <= 1.0
    assert info.trained_with["precision"] in ("fp32", "bf16") and "channels_last" in info.trained_with
    assert info.trained_with["ipex"]  # which path ran is recorded
    assert info.trained_with["precision_reason"]  # and why that precision


def test_resume_continues_from_last_epoch(run, tiny_kvasir):
    code = seg_train(["--data", f"kvasir:{tiny_kvasir}", "-o", str(run), "--base-width", "4", "--input-size", "64",
                      "64", "--epochs", "3", "--batch-size", "4", "--workers", "0", "--threads", "1",
                      "--resume", str(run / "last.pt"), "-q"])
    assert code == 0
    history = json.loads((run / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2, 3]
    state = read_checkpoint_file(run / "last.pt")["extra"]["train_state"]
    assert state["epoch"] == 3


def test_seg_eval_scores_the_held_out_split(run, tiny_kvasir, capsys):
    code = seg_eval([str(run / "best.pt"), "--data", f"kvasir:{tiny_kvasir}", "--split", str(run / "split.json"),
                     "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["count"] == 3 and out["task"] == "binary"
    assert 0.0 <= out["metrics"]["dice"] <= 1.0


def test_bad_inputs_give_one_line_errors(tmp_path, capsys, tiny_kvasir):
    assert seg_train(["--data", f"kvasir:{tmp_path / 'missing'}", "-o", str(tmp_path / "o"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err
    assert seg_eval([str(tmp_path / "none.pt"), "--data", f"kvasir:{tiny_kvasir}"]) == 2
    assert "does not exist" in capsys.readouterr().err
