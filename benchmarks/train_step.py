"""Training step time on the CPU: fp32 eager vs channels_last vs bf16 autocast + channels_last (oneDNN).

Same model init, same batches, same seed: the paths are timed in alternating blocks so drift
hits all alike, and their loss curves are written side by side. The report also says which
precision ``--precision auto`` picks on this CPU (and what its interleaved probe measured).

    python benchmarks/train_step.py --out benchmark-results/train_step   # AttU_Net w32, b4, 256x256, 50 steps
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from attnseg.benchmarking import machine_info
from attnseg.cpu_features import cpu_flags
from attnseg.models import create_model
from attnseg.train.acceleration import autocast, plan_acceleration, prepare_model, to_input
from attnseg.train.losses import SegmentationLoss

#: name -> (precision, channels_last)
PATHS = {"fp32": ("fp32", False), "fp32+channels_last": ("fp32", True), "bf16+channels_last": ("bf16", True)}


def make_runner(precision: str, channels_last: bool, width: int, seed: int):
    torch.manual_seed(seed)
    model = create_model("AttU_Net", base_width=width)
    plan = plan_acceleration(precision, channels_last=channels_last)
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
    runners = {name: make_runner(prec, cl, args.width, 0) for name, (prec, cl) in PATHS.items()}
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
    torch.manual_seed(0)
    auto = plan_acceleration("auto", model=create_model("AttU_Net", base_width=args.width),
                             input_shape=(args.batch, 3, args.size, args.size))
    flags = cpu_flags()
    report = {
        "model": f"AttU_Net base_width {args.width}", "batch": args.batch, "size": args.size, "steps": args.steps,
        "median_step_s": med, "speedup_vs_fp32_eager": {p: med["fp32"] / m for p, m in med.items()},
        "final_loss": {p: statistics.mean(v[-5:]) for p, v in losses.items()},
        "max_abs_loss_gap_vs_fp32": {p: max(abs(a - b) for a, b in zip(losses["fp32"], v)) for p, v in losses.items()},
        "auto_choice": {"precision": auto.precision, "reason": auto.precision_reason, "probe_ms": auto.auto_probe_ms},
        "cpu_bf16_flags": sorted(f for f in flags if "bf16" in f or f.startswith("amx")),
        "losses": losses, "step_times_s": times, "machine": machine_info().to_dict(),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_step.json").write_text(json.dumps(report, indent=2, default=str))
    rows = [f"| {p} | {med[p]:.3f} | {report['speedup_vs_fp32_eager'][p]:.2f}x | {report['final_loss'][p]:.4f} | "
            f"{report['max_abs_loss_gap_vs_fp32'][p]:.4f} |" for p in runners]
    md = "\n".join([
        f"# Training step, {report['model']}, batch {args.batch}, {args.size}x{args.size}, {args.steps} steps",
        "", (f"CPU bf16 flags: {', '.join(report['cpu_bf16_flags']) or 'none'}; "
             f"`--precision auto` picks **{auto.precision}** ({auto.precision_reason})."), "",
        "| path | median step (s) | speedup vs fp32 eager | mean loss, last 5 steps | max loss gap vs fp32 |",
        "| --- | ---: | ---: | ---: | ---: |", *rows, ""])
    (out / "train_step.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
