"""Fixtures of the fault-injection suite: a tiny checkpoint, a tiny IR, a dozen real images,
and a helper that runs a ``seg-*`` command in its own process (so it can be killed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")

SIZE = (64, 64)
SRC = Path(__file__).resolve().parents[2] / "src"
COMMANDS = {"seg-train": "train", "seg-eval": "evaluate", "seg-export": "export", "seg-optimize": "optimize",
            "seg-infer": "infer", "seg-benchmark": "benchmark"}


def command(name: str, *args: str) -> list[str]:
    """``seg-NAME args`` as an argv for this interpreter and this source tree."""
    mod = COMMANDS[name]
    code = f"import sys; from attnseg.cli.{mod} import main; sys.exit(main(sys.argv[1:]))"
    return [sys.executable, "-c", code, *map(str, args)]


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(SRC) + os.pathsep + e.get("PYTHONPATH", "")
    e.setdefault("OMP_NUM_THREADS", "1")
    return e


def run(name: str, *args: str, timeout: float = 600, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(command(name, *args), capture_output=True, text=True, env=env(), timeout=timeout, check=False,
                          cwd=cwd)


def start(name: str, *args: str, cwd: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen(command(name, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env(), cwd=cwd)


def wait_for(predicate, proc: subprocess.Popen, timeout: float = 300, what: str = "") -> None:
    """Poll ``predicate`` every 10 ms until it is true; fail if ``proc`` ends first."""
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if predicate():
            return
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"the process ended (exit {proc.returncode}) before {what}: {err[-2000:]}")
        time.sleep(0.01)
    proc.kill()
    pytest.fail(f"timed out waiting for {what}")


def one_clear_error(res: subprocess.CompletedProcess | tuple[int, str], *needles: str) -> str:
    """Exit 2, no traceback, and every ``needle`` (case-insensitive) in the message."""
    code, err = (res.returncode, res.stderr) if hasattr(res, "returncode") else res
    assert code == 2, f"exit {code}: {err[-3000:]}"
    assert "Traceback" not in err, err
    for n in needles:
        assert n.lower() in err.lower(), f"{n!r} not in {err!r}"
    return err


def leftovers(folder: Path) -> list[str]:
    """Hidden temporaries and locks attnseg may have left in ``folder`` (recursively)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob(".*") if p.name.endswith((".tmp", ".lock", ".old")))


@pytest.fixture(scope="session")
def faults_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="session")
def tiny_ckpt(faults_root) -> Path:
    """An AttU_Net, base width 4, 64x64, random weights, full checkpoint contract."""
    import torch

    from attnseg.models import create_model, save_checkpoint

    torch.manual_seed(0)
    model = create_model("AttU_Net", base_width=4)
    return save_checkpoint(faults_root / "tiny.pt", model, classes=["polyp"], input_size=SIZE)


@pytest.fixture(scope="session")
def wide_ckpt(faults_root) -> Path:
    """An AttU_Net of base width 8 (about 2 MB of weights): big enough to fill a small disk."""
    import torch

    from attnseg.models import create_model, save_checkpoint

    torch.manual_seed(0)
    return save_checkpoint(faults_root / "wide.pt", create_model("AttU_Net", base_width=8), classes=["polyp"],
                           input_size=SIZE)


@pytest.fixture(scope="session")
def tiny_ir(faults_root, tiny_ckpt) -> Path:
    from attnseg.export import export

    return export(tiny_ckpt, output_dir=faults_root / "ir", device="CPU").xml_path


@pytest.fixture(scope="session")
def kvasir12(shared_data, faults_root) -> Path:
    """12 real Kvasir-SEG pairs in the images/ + masks/ layout."""
    root = faults_root / "kvasir12"
    src = shared_data / "kvasir-seg"
    names = sorted(p.stem for p in (src / "images").glob("*.jpg"))[:12]
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True)
        for n in names:
            shutil.copy(src / sub / f"{n}.jpg", root / sub / f"{n}.jpg")
    return root
