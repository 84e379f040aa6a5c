"""Every code block of the README runs: Python blocks as written, shell blocks with tiny settings.

How it works (read this before adding a README section):

- Blocks are found automatically: every fenced block tagged ``python`` or ``bash`` in README.md
  becomes one test, named after the nearest heading and its line number.
- A block that cannot run here (it installs packages, starts a server that never returns,
  needs a cluster, or reruns the test suite) is marked in the README, on the line just before
  the fence, with ``<!-- readme-test: skip REASON -->``. Use it sparingly: the reason is shown
  in the test report.
- Each block runs in its own copy of a prepared working folder (``_workspace``), so blocks do not
  depend on each other's order. The folder holds what the README's examples name:
  ``best.pt`` and ``runs/kvasir/best.pt`` (the shipped model), ``AttU_Net-150-0.0002-70-0.4.pkl``
  (its bare state_dict, as the reference code saves), ``polyps/`` and ``polyp.jpg`` (bundled
  samples), ``large.png``, ``wide.jpg``, ``slide.png``, ``clip.mp4``, ``exported/`` (the shipped
  model exported to FP32 + INT8 IR), ``data/kvasir-tiny`` + ``splits/kvasir-tiny.json`` (12 real
  Kvasir-SEG pairs) and the repository's ``splits/``, ``benchmarks/`` and ``tools/``.
  Outputs a block creates (``-o X``, ``--out X``, ``output_dir="X"``, ``seg-optimize M.xml``'s
  ``M_int8.*``) are removed from its copy first, so "already exists" never fails a block that
  makes them.
- Python blocks run unchanged (``python -c``, the copy as working folder).
- Shell blocks run with ``bash -e`` after the substitutions in ``SUBSTITUTIONS``, applied in
  order to the block's text: the full Kvasir-SEG set and its split become the 12-image set and
  its split, epochs become one epoch of two batches, sizes shrink to 64 px, iteration counts to
  2, calibration / timing / hyperspectral settings to their smallest. Every rule says why. A
  README command keeps its flags: only counts and paths change.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
SHARED = (REPO.parent / "shared" / "data").resolve()
SKIP = re.compile(r"<!--\s*readme-test:\s*skip\s*(.*?)\s*-->")

#: (pattern, replacement, why) applied in order to a shell block's text.
SUBSTITUTIONS: list[tuple[str, str, str]] = [
    (r"\.\./shared/data/kvasir-seg", "data/kvasir-tiny", "12 real Kvasir-SEG pairs instead of 1000"),
    (r"splits/kvasir-seg\.json", "splits/kvasir-tiny.json", "the split of those 12 pairs (8/2/2)"),
    (r"\.\./shared/data/", f"{SHARED}/", "the other data sets where they are"),
    (r"--epochs \d+", "--epochs 1 --max-train-batches 2", "one epoch of two batches"),
    (r"--input-size \d+ \d+", "--input-size 64 64", "64 px models"),
    (r"(-{1,2}niter) \d+", r"\1 2", "two timed inferences"),
    (r" --vs-benchmark-app", "", "benchmark_app's own run takes a minute"),
    (r"(seg-optimize \S+)", r"\1 --subset-size 4 --latency-runs 1 --max-iterations 2",
     "4 calibration images, one timed run, two accuracy-control iterations"),
    (r"(seg-benchmark compare \S+)", r"\1 --rounds 1 --iters 1 --warmup 0 --max-images 2",
     "one round of one inference on two images"),
    (r"(--data indian-pines:\S+)", r"\1 --patch-size 11 --bands 16 --batch-size 8 --threads 1",
     "small hyperspectral patches"),
]


@dataclass
class Block:
    lang: str
    line: int
    heading: str
    code: str
    skip: str | None

    @property
    def id(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.heading.lower()).strip("-")[:30]
        return f"{self.lang}-L{self.line}-{slug}"


def read_blocks(text: str) -> list[Block]:
    """The ``python`` and ``bash`` fenced blocks of ``text`` with their heading and skip marker."""
    blocks, heading, lines = [], "top", text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#") and not line.startswith("#!"):
            heading = line.lstrip("#").strip()
        m = re.match(r"^```(python|bash|sh)\s*$", line)
        if m:
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            before = next((lines[k] for k in range(i - 1, -1, -1) if lines[k].strip()), "")
            marker = SKIP.search(before)
            blocks.append(Block("bash" if m.group(1) == "sh" else m.group(1), i + 1, heading,
                                "\n".join(lines[i + 1: j]) + "\n", (marker.group(1) or "no reason given")
                                if marker else None))
            i = j
        i += 1
    return blocks


def substitute(code: str) -> str:
    for pattern, repl, _why in SUBSTITUTIONS:
        code = re.sub(pattern, repl, code)
    return code


def outputs_of(code: str) -> list[str]:
    """Paths a block writes (they must not exist before it runs)."""
    found = re.findall(r"(?:^|\s)(?:-o|--out|--output|--output-dir|--report-folder)\s+([^\s\\]+)", code)
    found += re.findall(r"output_dir=[\"']([^\"']+)[\"']", code)
    for line in code.splitlines():  # seg-optimize without -o writes beside its input
        m = re.search(r"seg-optimize\s+(\S+?)\.xml", line)
        if m and not re.search(r"\s-o\s", line):
            found += [f"{m.group(1)}_int8*", f"{m.group(1)}_fp16*"]
    return [f.rstrip("/") for f in found]


BLOCKS = read_blocks(README.read_text(encoding="utf-8"))


def test_the_readme_has_blocks_and_the_markers_parse():
    assert any(b.lang == "python" for b in BLOCKS) and any(b.lang == "bash" for b in BLOCKS)
    sample = "x\n<!-- readme-test: skip needs a server -->\n```bash\nseg-serve m.xml\n```\n"
    (only,) = read_blocks(sample)
    assert only.skip == "needs a server" and only.code == "seg-serve m.xml\n"
    assert substitute("seg-train --epochs 30 --input-size 256 256") == \
        "seg-train --epochs 1 --max-train-batches 2 --input-size 64 64"
    assert outputs_of('export("best.pt", output_dir="exported")\nseg-infer m.xml x -o out/ --json') == \
        ["out", "exported"]


# ------------------------------------------------------------------------------- the workspace


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.setdefault("OMP_NUM_THREADS", "2")
    return env


@pytest.fixture(scope="session")
def _workspace(tmp_path_factory, shared_data) -> Path:
    import cv2
    import numpy as np
    import torch

    from attnseg.data import folder_pairs, make_split, write_split
    from attnseg.export import export
    from attnseg.optimize import AdvancedQuantizationParameters, quantize
    from attnseg.zoo import default_checkpoint, sample_dir

    ws = tmp_path_factory.mktemp("readme") / "template"
    ws.mkdir()
    for name in ("splits", "benchmarks", "tools"):
        shutil.copytree(REPO / name, ws / name)
    ship = default_checkpoint()
    shutil.copy(ship, ws / "best.pt")
    (ws / "runs" / "kvasir").mkdir(parents=True)
    shutil.copy(ship, ws / "runs" / "kvasir" / "best.pt")
    torch.save(torch.load(ship, weights_only=True)["state_dict"], ws / "AttU_Net-150-0.0002-70-0.4.pkl")
    samples = sorted((sample_dir() / "images").iterdir())
    (ws / "polyps").mkdir()
    for p in samples[:3]:
        shutil.copy(p, ws / "polyps" / p.name)
    shutil.copy(samples[0], ws / "polyp.jpg")
    img = cv2.imread(str(samples[0]))
    cv2.imwrite(str(ws / "large.png"), cv2.resize(img, (700, 520)))
    cv2.imwrite(str(ws / "slide.png"), cv2.resize(img, (600, 400)))
    cv2.imwrite(str(ws / "wide.jpg"), cv2.resize(img, (480, 200)))
    video = cv2.VideoWriter(str(ws / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 5, (160, 128))
    for i in range(4):
        video.write(np.roll(cv2.resize(img, (160, 128)), 8 * i, axis=1))
    video.release()
    tiny = ws / "data" / "kvasir-tiny"
    src = shared_data / "kvasir-seg"
    for sub in ("images", "masks"):
        (tiny / sub).mkdir(parents=True)
        for p in sorted((src / "images").glob("*.jpg"))[:12]:
            shutil.copy(src / sub / p.name, tiny / sub / p.name)
    write_split(ws / "splits" / "kvasir-tiny.json",
                make_split(folder_pairs(tiny), fractions={"train": 1.0}, test_count=2, val_count=2))
    shutil.copy(ws / "splits" / "kvasir-tiny.json", ws / "runs" / "kvasir" / "split.json")
    fp32 = export(ws / "best.pt", output_dir=ws / "exported", device="CPU").xml_path
    quantize(fp32, ws / "exported" / "model_int8.xml", calibration=ws / "polyps", subset_size=3, quiet=True,
             advanced=AdvancedQuantizationParameters(latency_runs=1))
    return ws


def _copy(template: Path, dest: Path, code: str) -> Path:
    shutil.copytree(template, dest, symlinks=True)
    for out in outputs_of(code):
        for target in dest.glob(out) if "*" in out else [dest / out]:
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    return dest


def _run(block: Block, workdir: Path) -> subprocess.CompletedProcess:
    if block.lang == "python":
        cmd = [sys.executable, "-c", block.code]
    else:
        cmd = ["bash", "-e", "-o", "pipefail", "-c", substitute(block.code)]
    return subprocess.run(cmd, cwd=workdir, env=_env(), capture_output=True, text=True, timeout=900, check=False)


@pytest.mark.slow
@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_readme_block_runs(block: Block, _workspace: Path, tmp_path: Path):
    if block.skip:
        pytest.skip(f"README line {block.line}: {block.skip}")
    code = block.code if block.lang == "python" else substitute(block.code)
    workdir = _copy(_workspace, tmp_path / "ws", code)
    res = _run(block, workdir)
    assert res.returncode == 0, (
        f"README line {block.line} ({block.heading}) failed with exit {res.returncode}:\n{code}\n"
        f"--- stdout\n{res.stdout[-3000:]}\n--- stderr\n{res.stderr[-5000:]}"
    )
    assert "Traceback" not in res.stderr, res.stderr[-5000:]
