"""seg-train: refused before anything is written, leaves no run folder, resumes bit for bit."""

from __future__ import annotations

import json
import signal

import pytest

from attnseg.cli.train import main as seg_train

from .conftest import leftovers, run, start, wait_for

TINY = ("--base-width", "4", "--input-size", "64", "64", "--batch-size", "2", "--test-count", "2",
        "--val-fraction", "0.2", "--workers", "0", "--threads", "1", "--training-precision", "fp32", "-q")


def _train(capsys, data, out, *args):
    code = seg_train(["--data", f"kvasir:{data}", "-o", str(out), *TINY, *args])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("args, needle", [
    (("--input-size", "65", "65"), "divisible by 16"),
    (("--input-size", "100000", "100000"), "pixels"),
    (("--arch", "Nope"), "Unknown architecture 'Nope'"),
    (("--batch-size", "0"), "--batch-size must be a positive integer"),
    (("--lr", "-1"), "--lr must be a finite number > 0"),
    (("--lr", "nan"), "--lr"),
    (("--epochs", "0"), "--epochs must be a positive integer"),
    (("--max-train-batches", "0"), "--max-train-batches"),
    (("--val-fraction", "1.5"), "--val-fraction"),
    (("--resume", "missing.pt"), "does not exist"),
    (("--arch", "HybridSN"), "hyperspectral"),
])
def test_bad_options_are_refused_and_leave_no_run_folder(capsys, kvasir12, tmp_path, args, needle):
    out = tmp_path / "deep" / "run"
    code, err = _train(capsys, kvasir12, out, *args)
    assert code == 2 and needle in err and "Traceback" not in err, err
    assert list(tmp_path.iterdir()) == [], "a refused run left files"


def test_unknown_arch_is_refused_before_the_data_is_read(capsys, tmp_path):
    code = seg_train(["--data", f"kvasir:{tmp_path / 'no-such-data'}", "-o", str(tmp_path / "r"), "--arch", "Foo"])
    assert code == 2 and "Unknown architecture 'Foo'" in capsys.readouterr().err


def test_output_naming_a_file_is_refused(capsys, kvasir12, tmp_path):
    f = tmp_path / "run.txt"
    f.write_text("not a folder")
    code, err = _train(capsys, kvasir12, f, "--epochs", "1")
    assert code == 2 and "is a file" in err
    assert f.read_text() == "not a folder"


def test_a_resume_file_that_is_not_a_training_checkpoint_leaves_nothing(capsys, kvasir12, tmp_path, tiny_ckpt):
    out = tmp_path / "run"
    code, err = _train(capsys, kvasir12, out, "--resume", str(tiny_ckpt))
    assert code == 2 and "no training state" in err
    assert not out.exists()


def test_a_run_failing_on_its_data_removes_its_folder(capsys, tmp_path):
    (tmp_path / "empty" / "images").mkdir(parents=True)
    (tmp_path / "empty" / "masks").mkdir()
    out = tmp_path / "run"
    code, err = _train(capsys, tmp_path / "empty", out, "--epochs", "1")
    assert code == 2 and "Traceback" not in err
    assert not out.exists()


@pytest.fixture(scope="module")
def uninterrupted(kvasir12, tmp_path_factory):
    """A straight run in its own process: ``--workers 1`` forks a DataLoader worker, and forking
    this test process (which by now holds OpenVINO, gRPC and Ray threads) can crash the child."""
    out = tmp_path_factory.mktemp("straight") / "run"
    res = run("seg-train", "--data", f"kvasir:{kvasir12}", "-o", str(out), *TINY, "--epochs", "3",
              "--max-train-batches", "3", "--workers", "1")
    assert res.returncode == 0, res.stderr[-2000:]
    return out


def test_resume_with_contradicting_flags_is_refused_naming_them(capsys, kvasir12, uninterrupted, tmp_path):
    code, err = _train(capsys, kvasir12, tmp_path / "r2", "--resume", str(uninterrupted / "last.pt"),
                       "--arch", "U_Net", "--base-width", "32", "--epochs", "4")
    assert code == 2
    assert "--arch U_Net (the checkpoint has AttU_Net)" in err and "--base-width 32 (the checkpoint has 4)" in err
    assert not (tmp_path / "r2").exists()


@pytest.mark.slow
def test_kill_and_resume_equals_an_uninterrupted_run_bit_for_bit(kvasir12, uninterrupted, tmp_path):
    import torch

    out = tmp_path / "run"
    args = ("--data", f"kvasir:{kvasir12}", "-o", out, *TINY, "--epochs", "3", "--max-train-batches", "3",
            "--workers", "1")
    proc = start("seg-train", *args)
    wait_for(lambda: (out / "last.pt").exists(), proc, what="the first last.pt")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = torch.load(out / "last.pt", weights_only=True)["extra"]["train_state"]["epoch"]
    assert done < 3, "the run finished before it was killed: nothing was resumed"
    res = run("seg-train", *map(str, args), "--resume", str(out / "last.pt"))
    assert res.returncode == 0, res.stderr[-2000:]
    a = torch.load(uninterrupted / "last.pt", weights_only=True)
    b = torch.load(out / "last.pt", weights_only=True)
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
    strip = lambda rows: [{k: v for k, v in r.items() if not k.endswith("seconds")} for r in rows]
    assert strip(json.loads((out / "history.json").read_text())) == \
        strip(json.loads((uninterrupted / "history.json").read_text()))
    assert leftovers(tmp_path) == []


def test_resume_with_nothing_left_to_do_is_refused(capsys, kvasir12, uninterrupted, tmp_path):
    code, err = _train(capsys, kvasir12, tmp_path / "r3", "--resume", str(uninterrupted / "last.pt"),
                       "--epochs", "3")
    assert code == 2 and "already run 3 epochs" in err
    assert not (tmp_path / "r3").exists()


def test_epoch_time_includes_validation(uninterrupted):
    rows = json.loads((uninterrupted / "history.json").read_text())
    for r in rows:
        assert {"train_seconds", "val_seconds", "epoch_seconds"} <= set(r)
        assert r["epoch_seconds"] == pytest.approx(r["train_seconds"] + r["val_seconds"], abs=0.11)
