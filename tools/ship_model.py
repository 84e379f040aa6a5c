"""Ship a trained checkpoint inside the package: fp16-stored weights, test-split metrics, the
model card (written from the checkpoint by tools/model_card.py) and ~30 bundled test samples
(with masks) for the demo and a quick calibration.

    python tools/ship_model.py RUN/best.pt --data kvasir:../shared/data/kvasir-seg \
        --split splits/kvasir-seg.json [--robustness PROXIES.json] [--latency REALTIME.md]

The checkpoint's whole recipe (``tools/recipe.py``: every run and weight average behind it,
through the release it replaces) is resolved now, while its sources are on disk, and stored in
the shipped checkpoint as ``trained_with["recipe"]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch

from attnseg.models import load_checkpoint
from attnseg.models.checkpoint import read_checkpoint_file
from attnseg.train.evaluate import evaluate_checkpoint
from model_card import render
from recipe import recipe_of

ZOO = Path(__file__).resolve().parents[1] / "src" / "attnseg" / "zoo"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", required=True)
    ap.add_argument("--name", default="kvasir_attunet16.pt")
    ap.add_argument("--samples", type=int, default=30)
    ap.add_argument("--robustness", help="JSON with 'command' and 'table' (markdown lines) for the card")
    ap.add_argument("--latency", help="Markdown report of benchmarks/realtime_budget.py for the card")
    ap.add_argument("--label", help="this model's name in the --robustness and --latency reports, as the card should say it, "
                                       "e.g. '`new`'")
    args = ap.parse_args()

    dest = ZOO / args.name
    previous = read_checkpoint_file(dest) if dest.is_file() else None
    raw = read_checkpoint_file(args.checkpoint)
    recipe = recipe_of(raw, read_checkpoint_file, previous)
    raw.pop("extra", None)  # optimizer state etc. stay in the run folder
    raw["state_dict"] = {k: v.half() if v.is_floating_point() else v for k, v in raw["state_dict"].items()}
    raw["trained_with"] = {**raw.get("trained_with", {}), "storage": "fp16 weights (loaded as fp32)",
                         "recipe": recipe}
    torch.save(raw, dest)

    # Metrics of the weights exactly as shipped, on the held-out test split, at full resolution.
    val = dict(raw.get("metrics") or {})
    if "dice" not in val:  # a weight average was never validated by a training run: score it here
        scored = evaluate_checkpoint(dest, args.data, args.split, "val").metrics
        val = {**{k: float(v) for k, v in scored.items() if isinstance(v, (int, float))}, "split": "val"}
    res = evaluate_checkpoint(dest, args.data, args.split, "test")
    raw["metrics"] = {**{k: float(v) for k, v in res.metrics.items() if isinstance(v, (int, float))},
                      "split": "test", "split_file": Path(args.split).name, "val_metrics": val}
    torch.save(raw, dest)
    load_checkpoint(dest)  # must load with the contract

    split = json.loads(Path(args.split).read_text())["splits"]
    src = Path(args.data.split(":", 1)[1])
    sample_root = ZOO / "samples" / "kvasir"
    shutil.rmtree(sample_root, ignore_errors=True)
    for sub in ("images", "masks"):
        (sample_root / sub).mkdir(parents=True)
    for name in sorted(split["test"])[: args.samples]:
        for sub in ("images", "masks"):
            shutil.copy(src / sub / f"{name}.jpg", sample_root / sub / f"{name}.jpg")
    robustness = json.loads(Path(args.robustness).read_text()) if args.robustness else None
    latency = Path(args.latency).read_text(encoding="utf-8") if args.latency else None
    card = render(dest, Path(args.checkpoint).parent, previous, robustness, latency, args.label)
    (ZOO / "MODEL_CARD.md").write_text(card, encoding="utf-8")
    print(json.dumps({"shipped": str(dest), "bytes": dest.stat().st_size, "test_metrics": raw["metrics"]}, indent=2))


if __name__ == "__main__":
    main()
