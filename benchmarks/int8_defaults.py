"""Measure the INT8 options for attention U-Nets and the figures quoted in docs/optimize_defaults.md.

1. ``--checkpoint`` (an AttU_Net trained on Kvasir-SEG) is exported to an FP32 IR, then quantized
   once per configuration of the grid (preset x fast bias correction x ignoring the attention
   gates), calibrating on ``--calib-split`` (train) of the split file. Each run reports Dice on
   ``--select-split`` (val: the defaults are chosen there, never on test) and on ``--test-split``
   (test: the figure quoted), the latency of the INT8 IR next to the FP32 IR measured in the
   same run, and the quantization time.
2. ``--width64``: an AttU_Net with base_width 64 (the issue's reference size, random weights)
   at the same input size: quantization time with ``--subset-size`` calibration images and
   the INT8 / FP32 latency ratio.

    python benchmarks/int8_defaults.py --checkpoint best.pt --data kvasir:../shared/data/kvasir-seg \
        --split splits/kvasir-seg.json --out int8-defaults --width64

Writes ``results.json`` and ``results.md`` in ``--out``. Not a test: takes many minutes, and
absolute times depend on the machine and its load (recorded in every row).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from pathlib import Path

log = logging.getLogger("int8_defaults")

GRID = [  # (name, preset, fast bias correction, ignore the attention gates)
    ("performance", "performance", True, False),
    ("mixed", "mixed", True, False),
    ("mixed, full bias correction", "mixed", False, False),
    ("mixed, gates ignored", "mixed", True, True),
    ("performance, gates ignored", "performance", True, True),
]


def score(xml: Path, data: str, split: str, device: str) -> float:
    """Dice of an IR on a split, scored exactly as seg-optimize scores it (f32 arithmetic)."""
    import openvino as ov

    from attnseg.optimize.calibration import InputFormat
    from attnseg.optimize.source import read_metadata
    from attnseg.optimize.validation import Scorer, choose_metric, load_validation

    core = ov.Core()
    model = core.read_model(str(xml))
    meta = read_metadata(model, xml)
    size = tuple(meta.input_size)
    fmt = InputFormat.of(meta, size, model.inputs[0].get_element_type().to_dtype())
    vset = load_validation(data, meta, fmt, choose_metric(None, meta), split)
    compiled = core.compile_model(model, device, {"INFERENCE_PRECISION_HINT": "f32"} if device == "CPU" else {})
    return Scorer(vset, meta, size)(compiled, range(len(vset)))[0]


def agreement(fp32_xml: Path, int8_xml: Path, data: str, split: str, device: str) -> float:
    """Mean per-image Dice of the INT8 IR's masks against the FP32 IR's masks: the quantization
    error itself, free of how good the model is (a Dice change can cancel out, this cannot)."""
    import numpy as np
    import openvino as ov

    from attnseg.data.metrics import binary_metrics
    from attnseg.optimize.calibration import InputFormat
    from attnseg.optimize.source import read_metadata
    from attnseg.optimize.validation import Scorer, choose_metric, load_validation

    core = ov.Core()
    cfg = {"INFERENCE_PRECISION_HINT": "f32"} if device == "CPU" else {}
    m32, m8 = core.read_model(str(fp32_xml)), core.read_model(str(int8_xml))
    meta = read_metadata(m32, fp32_xml)
    size = tuple(meta.input_size)
    fmt = InputFormat.of(meta, size, m32.inputs[0].get_element_type().to_dtype())
    vset = load_validation(data, meta, fmt, choose_metric(None, meta), split)
    s32, s8 = Scorer(vset, meta, size), Scorer(vset, meta, size)
    c32, c8 = core.compile_model(m32, device, cfg), core.compile_model(m8, device, cfg)
    return float(np.mean([binary_metrics(s8.predict(c8, i), s32.predict(c32, i))["dice"] for i in range(len(vset))]))


def run_grid(args, fp32_xml: Path, out: Path) -> list[dict]:
    from attnseg.optimize import AdvancedQuantizationParameters, quantize

    rows = []
    test_fp32 = score(fp32_xml, args.data, f"{args.split}:{args.test_split}", args.device)
    only = set(args.only or [])
    for name, preset, fbc, gates in GRID:
        if only and name not in only:
            continue
        log.info("=== %s", name)
        folder = out / name.replace(", ", "_").replace(" ", "_")
        t = time.perf_counter()
        r = quantize(fp32_xml, folder / "model_int8.xml", calibration=args.data, split=args.split,
                     subset_size=args.subset_size, preset=preset, validation=args.data, device=args.device,
                     force=True, quiet=True,
                     advanced=AdvancedQuantizationParameters(split_name=args.calib_split,
                                                             fast_bias_correction=fbc, ignore_gates=gates,
                                                             validation_split=f"{args.split}:{args.select_split}",
                                                             latency_runs=args.latency_runs))
        wall = time.perf_counter() - t
        test_int8 = score(r.output_xml, args.data, f"{args.split}:{args.test_split}", args.device)
        agree = agreement(fp32_xml, r.output_xml, args.data, f"{args.split}:{args.select_split}", args.device)
        lat = r.latency
        rows.append({
            "config": name, "preset": preset, "fast_bias_correction": fbc, "ignore_gates": gates,
            "quantizers": r.quantizers, "ignored_nodes": len(r.ignored.nodes),
            "select_split": args.select_split, "dice_fp32_select": r.accuracy.before, "dice_int8_select": r.accuracy.after,
            "drop_points_select": 100 * r.accuracy.drop, "agreement_select": agree,
            "test_split": args.test_split, "dice_fp32_test": test_fp32, "dice_int8_test": test_int8,
            "drop_points_test": 100 * (test_fp32 - test_int8),
            "latency_fp32_ms": lat.models["fp32"].median_ms, "latency_int8_ms": lat.models["optimized"].median_ms,
            "latency_fp32_f32_ms": lat.models["fp32_f32"].median_ms if "fp32_f32" in lat.models else None,
            "fp32_precision": lat.models["fp32"].inference_precision,
            "ratio_vs_fp32": lat.ratio("optimized", "fp32"), "ratio_vs_fp32_f32": lat.ratio("optimized", "fp32_f32"),
            "quantize_s": r.timings.get("quantize_s"), "quantize_cpu_s": r.timings.get("quantize_cpu_s"), "run_s": wall, "loadavg": lat.loadavg,
            "calibration_images": r.calibration.used, "report": str(r.report_json),
        })
        log.info("%s", json.dumps(rows[-1], default=str))
    return rows


def run_width64(args, out: Path) -> list[dict]:
    import torch

    from attnseg.export import AdvancedExportParameters, export
    from attnseg.models import create_model
    from attnseg.optimize import AdvancedQuantizationParameters, quantize

    fp32_dir = out / "attunet64_fp32"
    if not (fp32_dir / "model.xml").is_file():
        torch.manual_seed(0)
        model = create_model("AttU_Net", img_ch=3, output_ch=1, base_width=64)
        export(model=model, output_dir=fp32_dir, input_size=tuple(args.size), device=args.device, force=True,
               advanced=AdvancedExportParameters(parity_batches=1))
    rows = []
    for name, preset, fbc, gates in GRID:
        if name not in args.width64_configs:
            continue
        log.info("=== width 64: %s", name)
        t = time.perf_counter()
        r = quantize(fp32_dir / "model.xml",
                     out / f"attunet64_int8_{name.replace(', ', '_').replace(' ', '_')}"
                     / "model_int8.xml",
                     calibration=args.data, split=args.split, subset_size=args.subset_size, preset=preset,
                     device=args.device, force=True, quiet=True,
                     advanced=AdvancedQuantizationParameters(split_name=args.calib_split,
                                                             fast_bias_correction=fbc, ignore_gates=gates,
                                                             latency_runs=args.latency_runs64))
        lat = r.latency
        rows.append({
            "model": f"AttU_Net base_width 64, {args.size[0]}x{args.size[1]}, random weights", "config": name,
            "calibration_images": r.calibration.used, "quantize_s": r.timings["quantize_s"],
            "quantize_cpu_s": r.timings.get("quantize_cpu_s"),
            "calibration_load_s": r.timings.get("load_calibration_s"), "total_s": time.perf_counter() - t,
            "latency_fp32_ms": lat.models["fp32"].median_ms, "latency_int8_ms": lat.models["optimized"].median_ms,
            "latency_fp32_f32_ms": lat.models["fp32_f32"].median_ms if "fp32_f32" in lat.models else None,
            "fp32_precision": lat.models["fp32"].inference_precision,
            "ratio_vs_fp32": lat.ratio("optimized", "fp32"), "ratio_vs_fp32_f32": lat.ratio("optimized", "fp32_f32"),
            "latency_runs": lat.runs, "loadavg": lat.loadavg, "report": str(r.report_json),
        })
        log.info("%s", json.dumps(rows[-1], default=str))
    return rows


def markdown(doc: dict) -> str:
    lines = [f"# INT8 options for attention U-Nets ({doc['machine']['cpu']}, {doc['machine']['cores']} cores)", ""]
    if doc.get("grid"):
        g = doc["grid"]
        lines += [
            (f"Checkpoint `{doc['checkpoint']}`; calibration: {g[0]['calibration_images']} images of the "
             f"'{doc['calib_split']}' split; Dice on '{doc['select_split']}' (selection) and '{doc['test_split']}'."),
            "",
            (f"| config | FQ ops | Dice FP32 / INT8 ({doc['select_split']}) | drop (pt) | INT8-vs-FP32 mask Dice "
             f"({doc['select_split']}) | Dice FP32 / INT8 "
             f"({doc['test_split']}) | drop (pt) | latency FP32 / INT8 (ms) | INT8/FP32 | INT8/FP32-f32 | quantize wall (s) "
             "| quantize CPU (s) |"),
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in g:
            f32 = f"{r['ratio_vs_fp32_f32']:.2f}" if r["ratio_vs_fp32_f32"] else "-"
            cpu = f"{r['quantize_cpu_s']:.0f}" if r.get("quantize_cpu_s") else "-"
            lines.append(
                f"| {r['config']} | {r['quantizers']} | {r['dice_fp32_select']:.4f} / {r['dice_int8_select']:.4f} | "
                f"{r['drop_points_select']:+.2f} | {r['agreement_select']:.4f} | {r['dice_fp32_test']:.4f} / "
                f"{r['dice_int8_test']:.4f} | {r['drop_points_test']:+.2f} | {r['latency_fp32_ms']:.1f} / "
                f"{r['latency_int8_ms']:.1f} | {r['ratio_vs_fp32']:.2f} | {f32} | {r['quantize_s']:.0f} | {cpu} |")
        lines.append("")
    for w in doc.get("width64") or []:
        f32 = (f", f32-forced FP32 {w['latency_fp32_f32_ms']:.1f} ms (ratio {w['ratio_vs_fp32_f32']:.2f})"
               if w["latency_fp32_f32_ms"] else "")
        cpu = f", {w['quantize_cpu_s']:.0f} s of CPU" if w.get("quantize_cpu_s") else ""
        lines += [(f"{w['model']}, {w['config']}: quantization with {w['calibration_images']} calibration images "
                   f"took {w['quantize_s']:.0f} s wall{cpu} (+{w['calibration_load_s']:.0f} s decoding them); "
                   f"latency FP32 IR ({w['fp32_precision']}) {w['latency_fp32_ms']:.1f} ms vs INT8 "
                   f"{w['latency_int8_ms']:.1f} ms (ratio {w['ratio_vs_fp32']:.2f}){f32}; load average {w['loadavg']}."),
                  ""]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="trained AttU_Net checkpoint (skip the grid without it)")
    p.add_argument("--data", default="kvasir:../shared/data/kvasir-seg")
    p.add_argument("--split", default="splits/kvasir-seg.json")
    p.add_argument("--calib-split", default="train")
    p.add_argument("--select-split", default="val")
    p.add_argument("--test-split", default="test")
    p.add_argument("--subset-size", type=int, default=300)
    p.add_argument("--size", nargs=2, type=int, default=[256, 256])
    p.add_argument("--latency-runs", type=int, default=30)
    p.add_argument("--latency-runs64", type=int, default=20)
    p.add_argument("--width64", action="store_true", help="also time a base_width 64 AttU_Net")
    p.add_argument("--width64-configs", nargs="+", default=["mixed"],
                   help="grid configs to time at width 64 (default: mixed)")
    p.add_argument("--no-grid", action="store_true", help="skip the grid (width 64 only)")
    p.add_argument("--only", nargs="+", help="run only these grid configs (names as in the table)")
    p.add_argument("--device", default="CPU")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import openvino as ov

    doc = {
        "machine": {"cpu": ov.Core().get_property(args.device, "FULL_DEVICE_NAME"), "cores": os.cpu_count(),
                    "python": platform.python_version(), "openvino": ov.__version__},
        "checkpoint": args.checkpoint, "data": args.data, "split": args.split, "calib_split": args.calib_split,
        "select_split": args.select_split, "test_split": args.test_split, "subset_size": args.subset_size,
    }
    if args.checkpoint and not args.no_grid:
        from attnseg.export import AdvancedExportParameters, export

        fp32_dir = out / "fp32"
        if not (fp32_dir / "model.xml").is_file():
            export(args.checkpoint, output_dir=fp32_dir, device=args.device, force=True,
                   advanced=AdvancedExportParameters(parity_batches=1))
        doc["grid"] = run_grid(args, fp32_dir / "model.xml", out)
    if args.width64:
        doc["width64"] = run_width64(args, out)
    (out / "results.json").write_text(json.dumps(doc, indent=2, default=str) + "\n")
    (out / "results.md").write_text(markdown(doc))
    print(markdown(doc))


if __name__ == "__main__":
    main()
