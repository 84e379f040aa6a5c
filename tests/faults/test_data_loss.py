"""Data loss and leftovers: racing writers, killed writers, permissions."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys

import pytest

from attnseg.atomic import OutputBusyError, atomic_dir, atomic_file, output_lock, sweep_stale, temp_path

from .conftest import leftovers, one_clear_error, run, start, wait_for


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


# ------------------------------------------------------------------------------------- races


@pytest.mark.slow
def test_two_exports_racing_into_one_folder_never_both_succeed(tiny_ckpt, tmp_path):
    out = tmp_path / "shared_out"
    procs = [start("seg-export", tiny_ckpt, "-o", out, "--device", "CPU") for _ in range(2)]
    results = [(p.wait(timeout=600), *p.communicate()) for p in procs]
    codes = sorted(r[0] for r in results)
    assert codes == [0, 2], results
    loser = next(r for r in results if r[0] == 2)
    one_clear_error((loser[0], loser[2]), str(out))
    assert any(s in loser[2] for s in ("already exists", "Another attnseg process")), loser[2]
    winner = next(r for r in results if r[0] == 0)
    assert "Exported" in winner[1]
    assert {"model.xml", "model.bin", "model.onnx", "model.json", "export_report.json"} <= {
        p.name for p in out.iterdir()}
    assert leftovers(tmp_path) == []


def test_a_second_writer_of_one_output_fails_at_once(tmp_path):
    out = tmp_path / "out"
    with atomic_dir(out) as tmp:
        (tmp / "a").write_text("first")
        with pytest.raises(OutputBusyError, match=f"process {os.getpid()}"), atomic_dir(out):
            pass
    assert (out / "a").read_text() == "first"
    assert leftovers(tmp_path) == []


def test_a_writer_that_finds_the_output_written_meanwhile_fails(tmp_path):
    from attnseg.errors import OutputExistsError

    out = tmp_path / "out"
    with atomic_dir(out) as tmp:
        (tmp / "a").write_text("first")
    with pytest.raises(OutputExistsError, match="already exists"), atomic_dir(out):
        pass


def test_lock_is_released_and_removed_after_a_failure(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError), atomic_dir(out):
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with output_lock(out):  # free again
        pass


# ---------------------------------------------------------------------------- stale temporaries


def test_stale_temporaries_of_dead_processes_are_removed_live_ones_kept(tmp_path):
    dead = _dead_pid()
    stale_dir = tmp_path / f".exp_1.{dead}.abcd1234.tmp"
    stale_dir.mkdir()
    (stale_dir / "model.bin").write_bytes(b"x" * 100)
    stale_file = tmp_path / f".best.pt.{dead}.zz_9yy88.tmp"
    stale_file.write_bytes(b"x")
    live = tmp_path / f".exp_2.{os.getpid()}.abcd1234.tmp"
    live.mkdir()
    other = tmp_path / ".notes.tmp"
    other.write_text("user file")
    removed = sweep_stale(tmp_path)
    assert sorted(removed) == sorted([stale_dir, stale_file])
    assert live.is_dir() and other.is_file()


def test_temporaries_carry_the_writer_pid(tmp_path):
    t = temp_path(tmp_path, "model_int8", directory=True)
    assert t.name.startswith(f".model_int8.{os.getpid()}.") and t.name.endswith(".tmp")


def _kill_when(proc, predicate, what):
    wait_for(predicate, proc, what=what)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


@pytest.mark.slow
def test_sigkill_during_export_then_a_clean_rerun(tiny_ckpt, tmp_path):
    out = tmp_path / "exp_1"
    proc = start("seg-export", tiny_ckpt, "-o", out, "--device", "CPU")
    _kill_when(proc, lambda: any((p / "model.onnx").exists() for p in tmp_path.glob(".exp_1.*.tmp")),
               "the export's temporary folder")
    assert [p for p in tmp_path.glob(".exp_1.*.tmp")], "the kill left no temporary: the test proves nothing"
    assert not out.exists()
    res = run("seg-export", tiny_ckpt, "-o", out, "--device", "CPU")
    assert res.returncode == 0, res.stderr
    assert (out / "model.xml").is_file() and (out / "model.bin").is_file()
    assert leftovers(tmp_path) == []


@pytest.mark.slow
def test_sigkill_during_optimize_then_a_clean_rerun(tiny_ir, kvasir12, tmp_path):
    import shutil

    folder = tmp_path / "ir"
    shutil.copytree(tiny_ir.parent, folder)
    xml = folder / "model.xml"
    args = (xml, "--calibration", kvasir12 / "images", "--subset-size", "4", "--latency-runs", "1", "-q")
    proc = start("seg-optimize", *args)
    _kill_when(proc, lambda: any(folder.glob(".model_int8.*.tmp")), "the optimizer's temporary folder")
    assert any(folder.glob(".model_int8.*.tmp"))
    assert not (folder / "model_int8.xml").exists()
    res = run("seg-optimize", *args)
    assert res.returncode == 0, res.stderr
    assert (folder / "model_int8.xml").is_file()
    assert leftovers(folder) == []


def _train_args(data, out, *extra):
    return ("--data", f"kvasir:{data}", "-o", out, "--base-width", "4", "--input-size", "64", "64",
            "--batch-size", "2", "--test-count", "2", "--val-fraction", "0.2", "--workers", "0",
            "--threads", "1", "--training-precision", "fp32", "--max-train-batches", "2", "-q", *extra)


@pytest.mark.slow
def test_sigkill_during_train_then_a_clean_resume(kvasir12, tmp_path):
    out = tmp_path / "run"
    proc = start("seg-train", *_train_args(kvasir12, out, "--epochs", "3"))
    _kill_when(proc, lambda: (out / "last.pt").exists(), "the first last.pt")
    res = run("seg-train", *_train_args(kvasir12, out, "--epochs", "3", "--resume", out / "last.pt"))
    assert res.returncode == 0, res.stderr
    import json

    assert [r["epoch"] for r in json.loads((out / "history.json").read_text())] == [1, 2, 3]
    assert leftovers(tmp_path) == []


# ------------------------------------------------------------------------------------ permissions


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_outputs_honour_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        with atomic_dir(tmp_path / "out") as tmp:
            (tmp / "f.txt").write_text("x")
        with atomic_file(tmp_path / "g.txt") as t:
            t.write_text("y")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o777 & ~umask
    assert stat.S_IMODE((tmp_path / "out" / "f.txt").stat().st_mode) == 0o666 & ~umask
    assert stat.S_IMODE((tmp_path / "g.txt").stat().st_mode) == 0o666 & ~umask


def test_an_export_folder_is_not_private(tiny_ir):
    folder = tiny_ir.parent
    assert stat.S_IMODE(folder.stat().st_mode) == 0o777 & ~_umask()
    for f in folder.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o666 & ~_umask(), f


def _umask() -> int:
    from attnseg.atomic import current_umask

    return current_umask()
