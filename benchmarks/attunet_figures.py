#!/usr/bin/env python
"""Reproduce the README figures: the backend comparison and the benchmark_app agreement check.

    python benchmarks/attunet_figures.py --out benchmark-results/attunet64_256
    python benchmarks/attunet_figures.py --checkpoint runs/kvasir/best.pt --data kvasir:../shared/data/kvasir-seg \
        --split splits/kvasir-seg.json

Without --checkpoint it saves a seeded random-weight AttU_Net (base_width 64, the reference
width) at the given size: latency does not depend on the weights, accuracy does (so --data
is only meaningful with a trained checkpoint). Steps:

1. ``seg-benchmark compare`` on the checkpoint (every backend, alternating rounds);
2. ``seg-benchmark <its OpenVINO FP32 IR> --vs-benchmark-app`` with the latency hint (sync,
   one request) and the throughput hint (async, the device's requests), each checked
   against benchmark_app's median in the same run.

The machine's load average is in every report: on a shared machine, note it with the figures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path


def make_checkpoint(path: Path, width: int, size: int, seed: int) -> Path:
    import torch

    from attnseg.models import create_model, save_checkpoint

    torch.manual_seed(seed)
    model = create_model("AttU_Net", base_width=width).eval()
    return save_checkpoint(path, model, input_size=(size, size), trained_with={"note": f"random weights, seed {seed}"})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", type=Path, help="trained checkpoint (default: random-weight AttU_Net)")
    p.add_argument("--width", type=int, default=64, help="base_width of the random-weight model (default 64)")
    p.add_argument("--size", type=int, default=256, help="input size (default 256)")
    p.add_argument("--data", help="score every backend on this data set (KIND:PATH)")
    p.add_argument("--split", help="split file choosing the scored images (with --data)")
    p.add_argument("--split-name", default="test")
    p.add_argument("--max-images", type=int, default=50)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--niter", type=int, default=100, help="iterations for the benchmark_app check (default 100)")
    p.add_argument("--compile", action="store_true", help="also time torch.compile")
    p.add_argument("--out", type=Path, default=Path("benchmark-results/attunet_figures"))
    p.add_argument("--force", action="store_true")
    args = p.parse_args(argv)

    from attnseg.cli.benchmark import main as seg_benchmark

    args.out.mkdir(parents=True, exist_ok=True)
    ckpt = args.checkpoint or make_checkpoint(args.out / f"attunet{args.width}_{args.size}_random.pt",
                                              args.width, args.size, seed=0)
    compare_dir = args.out / "compare"
    cmd = ["compare", str(ckpt), "--input-size", str(args.size), str(args.size), "--rounds", str(args.rounds),
           "--iters", str(args.iters), "-o", str(compare_dir)]
    if args.data:
        cmd += ["--data", args.data, "--max-images", str(args.max_images)]
    if args.split:
        cmd += ["--split", f"{args.split}:{args.split_name}"]
    if args.compile:
        cmd.append("--compile")
    if args.force:
        cmd.append("--force")
    print("$ seg-benchmark " + " ".join(cmd), flush=True)
    rc = seg_benchmark(cmd)
    if rc:
        return rc

    data = json.loads((compare_dir / "compare.json").read_text())
    fp32 = next(b for b in data["backends"] if b["name"] == "openvino_fp32")
    if fp32["status"] != "ok":
        print(f"OpenVINO FP32 did not run ({fp32['note']}); no benchmark_app check.", file=sys.stderr)
        return 1
    ir = compare_dir / fp32["model_path"]
    for hint in ("latency", "throughput"):
        folder = args.out / f"vs_benchmark_app_{hint}"
        cmd = [str(ir), "-hint", hint, "-niter", str(args.niter), "--vs-benchmark-app", "-q",
               "-o", str(folder)]
        print(f"\n$ seg-benchmark {' '.join(cmd)}", flush=True)
        # a fresh process: its peak-memory figure is the IR's, not this script's torch models
        rc = subprocess.run([sys.executable, "-m", "attnseg.cli.benchmark", *cmd], check=False).returncode
        if rc:
            return rc
    return 0


if __name__ == "__main__":
    sys.exit(main())
