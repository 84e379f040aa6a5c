"""``seg-export ... --package``: the zip holds what an edge box needs, and its demo runs in a fresh
virtual environment that has only the core install (openvino, numpy, opencv; no torch)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from attnseg.cli.export import main as seg_export
from attnseg.export.package import core_requirements, install_command
from attnseg.zoo import default_checkpoint

REPO = Path(__file__).resolve().parents[2]
KVASIR = REPO.parent / "shared" / "data" / "kvasir-seg"


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pkg") / "export"
    code = seg_export([str(default_checkpoint()), "-o", str(out), "--package", "--quiet"])
    assert code == 0
    return out / "package.zip"


def _unzip(zip_path: Path, into: Path) -> Path:
    with zipfile.ZipFile(zip_path) as z:
        z.extractall(into)
        tops = {n.split("/")[0] for n in z.namelist()}
    assert len(tops) == 1  # one folder
    return into / tops.pop()


def test_package_contents_and_checksums(package, tmp_path):
    root = _unzip(package, tmp_path)
    names = sorted(p.name for p in root.iterdir())
    from attnseg.export.wheel import wheel_name

    assert names == sorted(["README.md", "SHA256SUMS", "demo.py", "model.bin", "model.json", "model.xml",
                            wheel_name()])
    for line in (root / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ")
        assert hashlib.sha256((root / name).read_bytes()).hexdigest() == digest
    assert len((root / "SHA256SUMS").read_text().splitlines()) == len(names) - 1
    readme = (root / "README.md").read_text()
    assert install_command() in readme and "torch" not in install_command()
    assert all(req in readme for req in core_requirements())
    assert "SegmentationModel.create_model" in readme  # the shipped model is Model API-compatible
    assert json.loads((root / "model.json").read_text())["task"] == "binary"


def test_package_failure_leaves_no_zip(tmp_path):
    from attnseg.errors import InputFileError
    from attnseg.export.package import write_package

    with pytest.raises(InputFileError, match="no OpenVINO IR"):
        write_package(tmp_path)
    assert not list(tmp_path.iterdir())


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


@pytest.mark.slow
def test_demo_runs_in_a_core_only_virtual_environment(package, tmp_path):
    """A plain ``python -m venv`` (no system site-packages), the core pinned by constraints.txt from
    PyPI, attnseg itself with --no-deps from the wheel in the package (the README's line); then the demo on real Kvasir images,
    a folder and a short video, compared with the Segmenter of this environment."""
    root = _unzip(package, tmp_path / "box")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=600)
    py = str(_venv_python(venv))
    pip = [py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    subprocess.run([*pip, "-c", str(REPO / "constraints.txt"), "openvino", "numpy", "opencv-python-headless"],
                   check=True, timeout=600, env=env)
    from attnseg.export.wheel import wheel_name

    subprocess.run([*pip, "--no-deps", f"./{wheel_name()}"], check=True, timeout=300, env=env, cwd=root)
    probe = subprocess.run([py, "-c", ("import importlib.util as u; print([m for m in ('torch', 'onnx', 'nncf') "
                            "if u.find_spec(m)])")], capture_output=True, text=True, check=True, env=env)
    assert probe.stdout.strip() == "[]"  # core only

    names = json.loads((REPO / "splits" / "kvasir-seg.json").read_text())["splits"]["test"][:3]
    images = [KVASIR / "images" / f"{n}.jpg" for n in names]
    run = subprocess.run([py, "demo.py", str(images[0]), "-o", "out"], cwd=root, capture_output=True,
                         text=True, timeout=300, env=env, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    written = cv2.imread(str(root / "out" / f"{names[0]}_mask.png"), cv2.IMREAD_GRAYSCALE)
    from attnseg.runtime import Segmenter

    expected = Segmenter(root / "model.xml").predict(images[0]).mask
    assert written.shape == expected.shape
    assert ((written > 0) == (expected > 0)).mean() >= 0.999

    folder = tmp_path / "folder"
    folder.mkdir()
    for p in images:
        (folder / p.name).write_bytes(p.read_bytes())
    run = subprocess.run([py, "demo.py", str(folder), "-o", "folder_out"], cwd=root, capture_output=True,
                         text=True, timeout=300, env=env, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    dices = []
    for n in names:
        got = cv2.imread(str(root / "folder_out" / f"{n}_mask.png"), cv2.IMREAD_GRAYSCALE) > 0
        gt = cv2.imread(str(KVASIR / "masks" / f"{n}.jpg"), cv2.IMREAD_GRAYSCALE) > 127
        dices.append(2 * (got & gt).sum() / (got.sum() + gt.sum()))
    assert np.mean(dices) > 0.5  # it finds the polyps (the model card's test Dice is 0.816)

    video = tmp_path / "clip.mp4"
    frames = [cv2.resize(cv2.imread(str(p)), (320, 256)) for p in images]
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 5.0, (320, 256))
    for f in frames:
        writer.write(f)
    writer.release()
    run = subprocess.run([py, "demo.py", str(video), "-o", "video_out"], cwd=root, capture_output=True,
                         text=True, timeout=300, env=env, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    cap = cv2.VideoCapture(str(root / "video_out" / "clip_overlay.mp4"))
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    assert count == 3
    summary = json.loads((root / "video_out" / "summary.json").read_text())
    assert len(summary["results"]) == 3 and np.mean([r["foreground_fraction"] for r in summary["results"]]) > 0
