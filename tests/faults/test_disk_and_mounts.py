"""A full disk and a mount point as the output: one clear message, before the work where possible,
and nothing left behind. Uses a small tmpfs mounted by the test (needs root; CI runs as root)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import pytest

from .conftest import leftovers, one_clear_error, run

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


@contextlib.contextmanager
def tmpfs(path: Path, size: str):
    path.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                         capture_output=True, text=True, check=False)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_export_onto_a_full_disk_says_no_space_left(wide_ckpt, tmp_path):
    # AttU_Net w8: model.onnx and model.bin are ~2.2 MB each; 3 MB holds the ONNX file, not the .bin
    with tmpfs(tmp_path / "small", "3m") as disk:
        res = run("seg-export", wide_ckpt, "-o", disk / "exp", "--device", "CPU")
        one_clear_error(res, "no space left on device", str(disk / "exp"))
        assert list(disk.iterdir()) == [], "a failed export left files on the full disk"


def test_checkpoint_save_onto_a_full_disk_says_no_space_left(tmp_path):
    import torch

    from attnseg.atomic import DiskFullError
    from attnseg.models import create_model, save_checkpoint

    with tmpfs(tmp_path / "small", "256k") as disk:
        with pytest.raises(DiskFullError, match="No space left on device"):
            save_checkpoint(disk / "best.pt", create_model("AttU_Net", base_width=8), input_size=(64, 64))
        assert list(disk.iterdir()) == []
        del torch


def test_mount_point_output_with_force_is_refused_before_the_work(tiny_ckpt, tmp_path):
    with tmpfs(tmp_path / "mnt", "8m") as mnt:
        (mnt / "old.txt").write_text("keep me")
        res = run("seg-export", tiny_ckpt, "-o", mnt, "--device", "CPU", "--force")
        err = one_clear_error(res, "mount point")
        assert "Exporting" not in res.stdout + err  # refused before the export started
        assert (mnt / "old.txt").read_text() == "keep me"
        assert leftovers(tmp_path) == []
