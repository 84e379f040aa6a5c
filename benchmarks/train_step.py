"""Training step time on the CPU: fp32 eager vs bf16 autocast + channels_last (oneDNN).

Same model init, same batches, same seed: the two paths are timed in alternating blocks so
drift hits both alike, and their loss curves are written side by side.

    python benchmarks/train_step.py --out benchmark-results/train_step   # AttU_Net w32, b4, 256x256, 50 steps
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from attnseg.benchmarks import machine_info
from attnseg.models import create_model
from attnseg.train.acceleration import autocast, plan_acceleration, prepare_model, to_input
from attnseg.train.losses import SegmentationLoss


def make_runner(precision: str, width: int, seed: int):
    torch.manual_seed(seed)
    model = create_model("AttU_Net", base_width=width)
    plan = plan_acceleration(precision, channels_last=precision == "bf16")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model, opt = prepare_model(model, opt, plan)
    return model, opt, plan


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--block", type=int, default=5, help="steps per alternating block")
    ap.add_argument("--out", default="benchmark-results/train_step")
    args = ap.parse_args()

    g = torch.Generator().manual_seed(0)
    batches = [(torch.randn(args.batch, 3, args.size, args.size, generator=g),
                (torch.rand(args.batch, args.size, args.size, generator=g) > 0.7).long()) for _ in range(args.steps)]
    loss_fn = SegmentationLoss(1)
    runners = {p: make_runner(p, args.width, 0) for p in ("fp32", "bf16")}
    times: dict[str, list[float]] = {p: [] for p in runners}
    losses: dict[str, list[float]] = {p: [] for p in runners}
    for start in range(0, args.steps, args.block):
        for p, (model, opt, plan) in runners.items():
            model.train()
            for x, y in batches[start:start + args.block]:
                t = time.perf_counter()
                with autocast(plan):
                    logits = model(to_input(x, plan))
                loss = loss_fn(logits, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                times[p].append(time.perf_counter() - t)
                losses[p].append(float(loss.detach()))
    skip = min(2, args.steps - 1)  # first steps create oneDNN primitives
    med = {p: statistics.median(v[skip:]) for p, v in times.items()}
    report = {
        "model": f"AttU_Net base_width {args.width}", "batch": args.batch, "size": args.size, "steps": args.steps,
        "median_step_s": med, "speedup_bf16_channels_last": med["fp32"] / med["bf16"],
        "final_loss": {p: statistics.mean(v[-5:]) for p, v in losses.items()},
        "max_abs_loss_gap": max(abs(a - b) for a, b in zip(losses["fp32"], losses["bf16"])),
        "losses": losses, "step_times_s": times, "machine": machine_info().to_dict(),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_step.json").write_text(json.dumps(report, indent=2, default=str))
    print(f"median step: fp32 {med['fp32']:.3f} s, bf16+channels_last {med['bf16']:.3f} s, "
          f"speedup {report['speedup_bf16_channels_last']:.2f}x; final loss fp32 {report['final_loss']['fp32']:.4f} "
          f"bf16 {report['final_loss']['bf16']:.4f}")


if __name__ == "__main__":
    main()
