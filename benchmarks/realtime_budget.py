"""Does a polyp model keep the real-time budget? INT8 and FP32 IRs through ``Segmenter.predict``
at batch 1, with and without test-time augmentation, and what INT8 costs in Dice (issue 26).

For each checkpoint: export it (FP32 IR), quantize it with NNCF (``attnseg.optimize.quantize``,
``--calibration`` train-split images), then, in interleaved rounds on the same pre-decoded
Kvasir-SEG test images:

* images/s of ``Segmenter(xml, hint="latency").predict(image)`` one image at a time (the live
  video path: decode excluded, preprocessing, inference and the mask at full size included), for
  every IR and every ``--tta`` mode; the median over rounds is reported;
* mean Dice of every IR on the whole test split (full resolution), so the INT8 drop is visible.

The budget is 30 images/s (colonoscopy video is 25-30 frames/s) on the machine at hand; the
report names its CPU. Timings on a shared machine are noisy: compare ratios within one run.

    python benchmarks/realtime_budget.py new=runs/new/best.pt old=src/attnseg/zoo/kvasir_attunet16.pt \
        --data kvasir:../shared/data/kvasir-seg --split splits/kvasir-seg.json \
        --out benchmarks/results/realtime_budget
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

log = logging.getLogger("realtime_budget")

BUDGET_FPS = 30.0


def parse_model(spec: str) -> tuple[str, Path]:
    label, sep, path = spec.partition("=")
    return (label, Path(path)) if sep else (Path(spec).stem, Path(spec))


def split_samples(data: str, split: str, part: str) -> list:
    from attnseg.data import apply_split, open_dataset, read_split

    info = open_dataset(data)
    return apply_split(info.samples, read_split(split), part)


def build_irs(checkpoint: Path, folder: Path, calibration: list[Path]) -> dict[str, Path]:
    """FP32 export and its NNCF INT8 twin, in ``folder``."""
    from attnseg.export import export
    from attnseg.optimize import quantize

    fp32 = Path(export(checkpoint, output_dir=folder / "export").xml_path)
    int8 = Path(quantize(fp32, folder / "int8" / "model_int8.xml", calibration=calibration,
                         subset_size=len(calibration), quiet=True).output_xml)
    return {"fp32": fp32, "int8": int8}


def images_per_second(seg, images: list[np.ndarray]) -> float:
    seg.predict(images[0])  # warm-up
    t0 = time.perf_counter()
    for img in images:
        seg.predict(img)
    return len(images) / (time.perf_counter() - t0)


def mean_dice(seg, pairs: list[tuple[np.ndarray, np.ndarray]]) -> float:
    from attnseg.data import binary_metrics

    return float(np.mean([binary_metrics(seg.predict(img).mask, gt)["dice"] for img, gt in pairs]))


def markdown(report: dict) -> str:
    lines = ["# Real-time budget: predict() at batch 1", "",
             (f"{report['timed_images']} Kvasir-SEG test images per round, pre-decoded, `Segmenter(xml, "
              f"hint=\"latency\").predict` one at a time; median of {report['rounds']} interleaved rounds. "
              f"Budget {BUDGET_FPS:.0f} images/s. Dice: all {report['scored_images']} test images, full "
              "resolution."), "",
             "| model | IR | TTA | images/s (median) | budget | Dice |", "| --- | --- | --- | ---: | --- | ---: |"]
    for row in report["rows"]:
        ok = "yes" if row["images_per_s"] >= BUDGET_FPS else "no"
        dice = "" if row.get("dice") is None else f"{row['dice']:.4f}"
        lines.append(f"| {row['model']} | {row['ir']} | {row['tta']} | {row['images_per_s']:.1f} | {ok} | {dice} |")
    lines += ["", "Command:", "", "```", report["command"], "```", "", *report["machine"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("models", nargs="+", help="label=checkpoint.pt")
    p.add_argument("--data", default="kvasir:../shared/data/kvasir-seg")
    p.add_argument("--split", default="splits/kvasir-seg.json")
    p.add_argument("--calibration", type=int, default=300, help="train-split images for INT8 calibration")
    p.add_argument("--images", type=int, default=40, help="test images timed per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--tta", default="none,flip,flip4", help="comma-separated TTA modes to time")
    p.add_argument("--score-limit", type=int, default=None, help="score the first N test images only")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/realtime_budget"))
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from attnseg.benchmarking.machine import machine_info
    from attnseg.data import load_pair
    from attnseg.imaging import read_image
    from attnseg.runtime import Segmenter

    machine = machine_info()
    train = split_samples(args.data, args.split, "train")
    test = split_samples(args.data, args.split, "test")
    calibration = [Path(s.image) for s in train[: args.calibration]]
    timed = [read_image(s.image) for s in test[: args.images]]
    scored = [load_pair(s, "binary") for s in test[: args.score_limit]]
    ttas = [t for t in args.tta.split(",") if t]
    rows: dict[tuple[str, str, str], dict] = {}
    with tempfile.TemporaryDirectory(prefix="realtime_budget_") as tmp:
        segs = {}
        for spec in args.models:
            label, ckpt = parse_model(spec)
            log.info("export + INT8: %s", ckpt)
            for ir, xml in build_irs(ckpt, Path(tmp) / label, calibration).items():
                for tta in ttas:
                    segs[(label, ir, tta)] = Segmenter(xml, hint="latency", tta=tta)
                    rows[(label, ir, tta)] = {"model": label, "ir": ir, "tta": tta, "path": str(ckpt), "runs": []}
        for r in range(args.rounds):
            order = list(segs) if r % 2 == 0 else list(segs)[::-1]
            for key in order:
                rows[key]["runs"].append(round(images_per_second(segs[key], timed), 2))
            log.info("round %d/%d done", r + 1, args.rounds)
        for key, seg in segs.items():
            rows[key]["images_per_s"] = statistics.median(rows[key]["runs"])
            rows[key]["dice"] = round(mean_dice(seg, scored), 4) if key[2] in ("none", ttas[-1]) else None
            rows[key]["inference_precision"] = seg.inference_precision
    report = {"rows": list(rows.values()), "rounds": args.rounds, "timed_images": len(timed),
              "scored_images": len(scored), "budget_images_per_s": BUDGET_FPS,
              "command": " ".join(["python", "benchmarks/realtime_budget.py", *(sys.argv[1:] if argv is None else argv)]),
              "machine": machine.summary_lines(), "machine_info": machine.to_dict()}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "realtime_budget.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (args.out / "realtime_budget.md").write_text(markdown(report), encoding="utf-8")
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
