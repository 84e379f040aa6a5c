#!/usr/bin/env python
"""The README's model table: accuracy and latency of trained checkpoints in every precision.

For each checkpoint of an image data set (Kvasir-SEG, CamVid, ...):

1. PyTorch accuracy on the test split at the images' own resolution (``evaluate_checkpoint``,
   the same numbers as ``seg-eval``);
2. export to an FP32 IR and NNCF INT8 (calibrated on the train split, never on test) with
   ``quantize``, which also scores both IRs on the test split the same way (masks at the
   images' size; FP32 at f32, so it must match PyTorch);
3. latency at batch 1, one synchronous request: PyTorch eager fp32, the FP32 IR at f32 (the
   runtime's choice on CPUs without AMX), the FP32 IR at the device default, and the INT8 IR,
   every model and backend timed in one rotation so rows compare as fairly as columns.

HybridSN checkpoints report OA / AA / kappa on their test pixels (scored at the end of
training and stored in the checkpoint) and the same latencies per 25x25 patch (no INT8:
calibration takes images).

    python benchmarks/model_table.py --data kvasir:../shared/data/kvasir-seg --split splits/kvasir-seg.json \
        --out benchmark-results/kvasir runs/kvasir-attunet16/best.pt runs/kvasir-unet16/best.pt
    python benchmarks/model_table.py --data camvid:../shared/data/camvid --split runs/camvid/split.json \
        --out benchmark-results/camvid runs/camvid/best.pt
    python benchmarks/model_table.py --out benchmark-results/ip runs/ip-hybridsn/best.pt runs/ip-hybridsn-se/best.pt

Writes ``table.md`` and ``table.json`` in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np


def torch_runner(model: Any, x: Any):
    import torch

    def run() -> None:
        with torch.no_grad():
            model(x)
    return run


def ov_runner(xml: Path, config: dict[str, Any], sample: np.ndarray) -> tuple[Any, str]:
    import openvino as ov

    compiled = ov.Core().compile_model(str(xml), "CPU", {"PERFORMANCE_HINT": "LATENCY", **config})
    request = compiled.create_infer_request()
    precision = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
    return (lambda: request.infer({0: sample})), str(precision)


def interleaved_medians(runners: dict[str, Any], runs: int, warmup: int = 2) -> dict[str, float]:
    """Median ms of each runner, timed in rotating order so load changes hit all alike."""
    for run in runners.values():
        for _ in range(warmup):
            run()
    names, times = list(runners), {n: [] for n in runners}  # keys: any hashable
    for r in range(runs):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            t = time.perf_counter()
            runners[name]()
            times[name].append((time.perf_counter() - t) * 1000)
    return {n: round(statistics.median(v), 2) for n, v in times.items()}


def image_row(ckpt: Path, args, out: Path) -> dict[str, Any]:
    import torch

    from attnseg.models import load_checkpoint
    from attnseg.optimize import AdvancedQuantizationParameters, quantize
    from attnseg.train.evaluate import evaluate_checkpoint

    model, info = load_checkpoint(ckpt)
    metric = "dice" if info.task == "binary" else "miou"
    t0 = time.perf_counter()
    torch_eval = evaluate_checkpoint(ckpt, args.data, args.split, args.test_split)
    torch_metric = float(torch_eval.metrics[metric])
    eval_s = time.perf_counter() - t0
    folder = out / ckpt.parent.name
    t0 = time.perf_counter()
    q = quantize(ckpt, folder, calibration=args.data, split=args.split, subset_size=args.subset_size,
                 validation=args.data, metric=metric, force=True, quiet=True,
                 advanced=AdvancedQuantizationParameters(split_name=args.calib_split,
                                                         validation_split=f"{args.split}:{args.test_split}" if args.split else args.test_split,
                                                         latency_runs=0))
    quantize_s = time.perf_counter() - t0
    h, w = info.input_size
    sample = np.random.default_rng(0).integers(0, 256, (1, h, w, 3), dtype=np.uint8)
    runners, precisions = {"pytorch_fp32": torch_runner(model, torch.randn(1, info.in_channels, h, w))}, {}
    for name, xml, cfg in (("ov_fp32_f32", q.source_xml, {"INFERENCE_PRECISION_HINT": "f32"}),
                           ("ov_fp32_default", q.source_xml, {}), ("ov_int8", q.output_xml, {})):
        runners[name], precisions[name] = ov_runner(xml, cfg, sample)
    return {
        "checkpoint": str(ckpt), "arch": info.arch, "arch_kwargs": dict(info.arch_kwargs),
        "params": sum(p.numel() for p in model.parameters()), "input_size": [h, w], "task": info.task,
        "metric": metric, "test_images": int(torch_eval.count),
        "pytorch": torch_metric, "ov_fp32": q.accuracy.before, "ov_int8": q.accuracy.after,
        "int8_drop_points": (q.accuracy.before - q.accuracy.after) * 100, "ir_count": q.accuracy.count,
        "compute_precision": precisions,
        "size_mb": {"fp32": q.size.before_bytes / 1e6, "int8": q.size.after_bytes / 1e6},
        "calibration_images": q.calibration.used if q.calibration else None,
        "timings_s": {"evaluate": round(eval_s, 1), "export_and_quantize": round(quantize_s, 1)},
    }, runners


def hyperspectral_row(ckpt: Path, args, out: Path) -> dict[str, Any]:
    import torch

    from attnseg.export import export
    from attnseg.models import load_checkpoint

    model, info = load_checkpoint(ckpt)
    m = info.metrics
    exported = export(ckpt, output_dir=out / ckpt.parent.name, force=True)
    x = torch.randn(*exported.parity.input_shape)
    sample = x.numpy()
    runners, precisions = {"pytorch_fp32": torch_runner(model, x)}, {}
    for name, cfg in (("ov_fp32_f32", {"INFERENCE_PRECISION_HINT": "f32"}), ("ov_fp32_default", {})):
        runners[name], precisions[name] = ov_runner(exported.xml_path, cfg, sample)
    return {
        "checkpoint": str(ckpt), "arch": info.arch, "arch_kwargs": dict(info.arch_kwargs),
        "params": sum(p.numel() for p in model.parameters()), "task": "hyperspectral", "metric": "oa",
        "pytorch": float(m["oa"]), "aa": float(m["aa"]), "kappa": float(m["kappa"]),
        "test_pixels": int(m.get("test_pixels", 0)), "compute_precision": precisions,
        "parity_max_abs_f32": max((b.max_abs_diff for b in exported.parity.backends if b.enforced), default=None),
    }, runners


def training_summary(trained_with: dict[str, Any]) -> str:
    """How a checkpoint was trained, in a few words: epochs, precision, warm start."""
    cfg = trained_with.get("config", {})
    text = f"{cfg.get('epochs', '?')} ep, {trained_with.get('precision', '?')}"
    if trained_with.get("init_from"):
        text += f", from {Path(trained_with['init_from']).parent.name}"
    return text


def markdown(rows: list[dict[str, Any]], args) -> str:
    load = os.getloadavg()
    title = (f"# Model table ({args.data or 'hyperspectral'}; {args.runs} interleaved runs per latency, "
             f"load average {load[0]:.1f})")
    lines = [title, ""]
    image = [r for r in rows if r["task"] != "hyperspectral"]
    if image:
        lines += [("| model | run | training | params | test images | metric | PyTorch fp32 | OV FP32 (f32) | "
                   "OV INT8 | INT8 drop (pt) | PyTorch ms | OV FP32 f32 ms | OV FP32 default ms | OV INT8 ms | INT8 MB |"),
                  "| --- | --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for r in image:
            lat = r["latency_ms"]
            lines.append(
                f"| {r['arch']} w{r['arch_kwargs'].get('base_width', '?')} {r['input_size'][0]}x{r['input_size'][1]} "
                f"| {r.get('run', '')} | {r.get('training', '')} | {r['params'] / 1e6:.2f} M | {r['test_images']} "
                f"| {r['metric']} | {r['pytorch']:.4f} "
                f"| {r['ov_fp32']:.4f} | {r['ov_int8']:.4f} | {r['int8_drop_points']:+.2f} | {lat['pytorch_fp32']:.1f} "
                f"| {lat['ov_fp32_f32']:.1f} | {lat['ov_fp32_default']:.1f} ({r['compute_precision']['ov_fp32_default']}) "
                f"| {lat['ov_int8']:.1f} | {r['size_mb']['int8']:.2f} |")
    hyper = [r for r in rows if r["task"] == "hyperspectral"]
    if hyper:
        lines += ["", ("| model | params | test pixels | OA | AA | kappa | PyTorch ms | OV FP32 f32 ms | "
                       "OV FP32 default ms |"), "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for r in hyper:
            lat = r["latency_ms"]
            lines.append(f"| {r['arch']} | {r['params'] / 1e6:.2f} M | {r['test_pixels']} | {r['pytorch'] * 100:.2f}% "
                         f"| {r['aa'] * 100:.2f}% | {r['kappa']:.4f} | {lat['pytorch_fp32']:.2f} | "
                         f"{lat['ov_fp32_f32']:.2f} | {lat['ov_fp32_default']:.2f} "
                         f"({r['compute_precision']['ov_fp32_default']}) |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoints", nargs="+", type=Path)
    p.add_argument("--data", help="data set spec of the image checkpoints (KIND:PATH)")
    p.add_argument("--split", help="split file (test / train parts)")
    p.add_argument("--test-split", default="test")
    p.add_argument("--calib-split", default="train")
    p.add_argument("--subset-size", type=int, default=300)
    p.add_argument("--runs", type=int, default=30, help="timed runs per model (default 30)")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    from attnseg.models import load_checkpoint

    rows, runners = [], {}
    for i, ckpt in enumerate(args.checkpoints):
        _, info = load_checkpoint(ckpt)
        if info.arch.startswith("HybridSN"):
            row, model_runners = hyperspectral_row(ckpt, args, args.out)
        else:
            if not args.data:
                p.error(f"{ckpt}: image checkpoints need --data")
            row, model_runners = image_row(ckpt, args, args.out)
        row.update(run=ckpt.parent.name, training=training_summary(info.trained_with))
        rows.append(row)
        runners.update({(i, name): run for name, run in model_runners.items()})
        print(json.dumps({k: v for k, v in row.items() if k != "arch_kwargs"}, default=str), flush=True)
    # Every model and backend in one rotation: cross-row ratios are as fair as within-row ones.
    latency = interleaved_medians(runners, args.runs)
    for (i, name), ms in latency.items():
        rows[i].setdefault("latency_ms", {})[name] = ms
    (args.out / "table.json").write_text(json.dumps({"rows": rows, "loadavg": os.getloadavg()}, indent=2, default=str))
    md = markdown(rows, args)
    (args.out / "table.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
