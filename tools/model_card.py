"""Write the shipped model's card from its checkpoint, so card and weights cannot disagree.

Everything the card states (architecture, split, selection epoch, training commands, metrics) is
read from the checkpoint's contract keys and ``trained_with``; a warm-started run also shows the
command of the run it started from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from attnseg.data import read_split
from attnseg.models import load_checkpoint
from attnseg.models.checkpoint import read_checkpoint_file

# (config key, flag, default the command may leave out)
_FLAGS = [("arch", "--arch", None), ("base_width", "--base-width", None), ("input_size", "--input-size", None),
          ("epochs", "--epochs", None), ("batch_size", "--batch-size", None), ("lr", "--lr", None),
          ("weight_decay", "--weight-decay", 1e-4), ("augmentation_prob", "--augmentation-prob", 0.5),
          ("precision", "--precision", "auto"), ("threads", "--threads", None), ("workers", "--workers", None),
          ("seed", "--seed", 0), ("init_from", "--init-from", None)]

LICENCE = """Kvasir-SEG is for research and educational use only; commercial use is forbidden without
the authors' written permission. Cite: D. Jha et al., "Kvasir-SEG: A Segmented Polyp Dataset",
MMM 2020, doi:10.1007/978-3-030-37734-2_37. The weights inherit that restriction. The sample
images in `samples/kvasir/` are from the test split, under the same terms."""


def _data_arg(data: str) -> str:
    kind, _, path = data.partition(":")
    return f"{kind}:../shared/data/{Path(path).name}" if path else data


def train_command(config: dict[str, Any], output: str) -> str:
    """The ``seg-train`` command line that reproduces a run from its saved config."""
    parts = [f"seg-train --data {_data_arg(config['data'])}"]
    if config.get("split_file"):
        parts.append(f"--split {config['split_file']}")
    parts.append(f"-o {output}")
    for key, flag, default in _FLAGS:
        value = config.get(key)
        if value is None or value == default:
            continue
        if key == "init_from":
            value = f"runs/{Path(value).parent.name}/{Path(value).name}"
        parts.append(f"{flag} {' '.join(map(str, value)) if isinstance(value, list) else value}")
    lines, line = [], ""
    for part in parts:  # wrap at about 100 characters with shell continuations
        if line and len(line) + len(part) > 96:
            lines.append(line + " \\")
            line = "    "
        line += ("" if line.strip() == "" else " ") + part
    return "\n".join([*lines, line])


def _precision_text(tw: dict[str, Any]) -> str:
    prec = "bf16 autocast" if tw.get("precision") == "bf16" else "fp32"
    cl = " + channels_last" if tw.get("channels_last") else ""
    return f"{prec}{cl}"


REPO = Path(__file__).resolve().parents[1]


def _split_counts(split_file: str) -> str:
    """``train 800 / val 100 / test 100`` from the split file the run trained on."""
    split = read_split(REPO / split_file)
    return " / ".join(f"{name} {len(split[name])}" for name in ("train", "val", "test") if name in split)


def _epoch_minutes(run: Path) -> str:
    history = run / "history.json"
    if not history.is_file():
        return ""
    rows = json.loads(history.read_text())
    total = sum(r.get("epoch_seconds", 0) for r in rows) / 60
    return f", {len(rows)} epochs in {total:.0f} min of training steps"


def render(shipped: Path, run: Path | None = None) -> str:
    """The model card of checkpoint ``shipped``; ``run`` is the run folder it came from (optional)."""
    model, info = load_checkpoint(shipped)
    tw, m = info.trained_with, dict(info.metrics)
    cfg = {**tw.get("config", {})}
    if tw.get("init_from"):  # a resumed warm-started run has it in trained_with only
        cfg["init_from"] = tw["init_from"]
    val = m.get("val_metrics", {})
    split_file = cfg.get("split_file", "splits/kvasir-seg.json")
    params = sum(p.numel() for p in model.parameters()) / 1e6
    h, w = info.input_size
    mb = shipped.stat().st_size / 1e6
    out = [f"# Model card: `{shipped.name}` (the default model that ships with attnseg)", "", "| | |", "| --- | --- |",
           (f"| Architecture | `{info.arch}` (reference layer names), `base_width={info.arch_kwargs.get('base_width')}`, "
           f"{info.in_channels} -> {info.arch_kwargs.get('output_ch', 1)} channels, {params:.2f} M parameters |"),
           (f"| Task | binary polyp segmentation (class `{info.classes[-1]}`), threshold {info.threshold} "
           "on the sigmoid |"),
           (f"| Input | {h} x {w} RGB, ImageNet mean/std; any image is stretch-resized to {h} x {w} and the mask "
           "resized back |"),
           f"| Storage | {tw.get('storage', 'fp32 weights')} in an attnseg checkpoint, {mb:.1f} MB |",
           "| Data | Kvasir-SEG (Jha et al., MMM 2020): 1000 colonoscopy images with polyp masks |",
           (f"| Split | `{split_file}`, seed {cfg.get('seed', 0)}: {_split_counts(split_file)}. "
           "The test images were never used for training, model selection or INT8 calibration |"),
           (f"| Selection | best validation Dice over {cfg.get('epochs')} epochs (epoch {val.get('epoch')}, "
           f"val Dice {val.get('dice', float('nan')):.3f}) |"), ""]
    out += [(f"## Training (CPU, {_precision_text(tw)} through oneDNN, {tw.get('threads')} threads"
            f"{_epoch_minutes(run) if run else ''})"), ""]
    source = tw.get("init_from")
    if source and Path(source).is_file():
        src_tw = read_checkpoint_file(source).get("trained_with", {})
        out += [(f"Warm start: the encoder and decoder ({tw.get('init_copied_tensors')} tensors) come from a "
                f"`{src_tw.get('config', {}).get('arch')}` trained first with the same recipe; the attention gates "
                f"({', '.join(tw.get('init_fresh_modules', []))}) start fresh. The reference implementation names "
                "both models' layers alike, so `--init-from` copies every tensor whose name and shape match."), "",
                "```", train_command(src_tw.get("config", {}), f"runs/{Path(source).parent.name}"),
                train_command(cfg, f"runs/{Path(cfg.get('output_dir', 'run')).name}"), "```", ""]
    else:
        out += ["```", train_command(cfg, f"runs/{Path(cfg.get('output_dir', 'run')).name}"), "```", ""]
    out += [("then `python tools/ship_model.py RUN/best.pt --data kvasir:../shared/data/kvasir-seg "
            "--split splits/kvasir-seg.json` stores the weights in fp16, scores them and writes this card."), "",
            ("AdamW, cosine schedule, BCE + Dice loss, augmentation (rotation, flips, crops, colour jitter). "
            "Width 16 and 256 x 256 keep an epoch near 100 s on the 2-core CPU the project is developed on."), "",
            f"## Metrics on the {int(m['count'])} held-out test images (full resolution, weights as shipped)", "",
            (f"`seg-eval src/attnseg/zoo/{shipped.name} --data kvasir:../shared/data/kvasir-seg "
            "--split splits/kvasir-seg.json`"), "",
            "| Dice | Jaccard | Sensitivity | Precision |", "| --- | --- | --- | --- |",
            f"| {m['dice']:.3f} | {m['jaccard']:.3f} | {m['sensitivity']:.3f} | {m['precision']:.3f} |", "",
            ("For scale: ResUNet++ reports 0.813 Dice on Kvasir-SEG after far longer training on a GPU. This is a "
            "demonstration model for the pipeline, not a clinical tool."), "",
            "## Licence of the data", "", LICENCE, ""]
    return "\n".join(out)
