"""Write the shipped model's card from its checkpoint, so card and weights cannot disagree.

Everything the card states (architecture, split, selection epoch, training commands, metrics) is
read from the checkpoint's contract keys and ``trained_with``; the recipe (``tools/recipe.py``)
shows every run and weight average behind the weights, oldest first.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from attnseg.data import read_split
from attnseg.models import load_checkpoint
from attnseg.models.checkpoint import read_checkpoint_file
from recipe import recipe_counts, recipe_of, recipe_steps

# (config key, flag, default the command may leave out)
_FLAGS = [("arch", "--arch", None), ("base_width", "--base-width", None), ("input_size", "--input-size", None),
          ("epochs", "--epochs", None), ("batch_size", "--batch-size", None), ("lr", "--lr", None),
          ("weight_decay", "--weight-decay", 1e-4), ("augmentation_prob", "--augmentation-prob", 0.5),
          ("precision", "--training-precision", "auto"), ("threads", "--threads", None), ("workers", "--workers", None),
          ("seed", "--seed", 0), ("augmentation", "--augmentation", "basic"),
          ("loss", "--loss", "bce-dice"), ("ema", "--ema", None), ("tile_crop_prob", "--tile-crop-prob", 0.0),
          ("input_interpolation", "--input-interpolation", "linear"),
          ("max_train_batches", "--max-train-batches", None), ("init_from", "--init-from", None)]

LICENCE = """Kvasir-SEG is for research and educational use only; commercial use is forbidden without
the authors' written permission. Cite: D. Jha et al., "Kvasir-SEG: A Segmented Polyp Dataset",
MMM 2020, doi:10.1007/978-3-030-37734-2_37. The weights inherit that restriction. The sample
images in `samples/kvasir/` are from the test split, under the same terms."""


def _data_arg(data: str) -> str:
    kind, _, path = data.partition(":")
    return f"{kind}:../shared/data/{Path(path).name}" if path else data


def train_command(config: dict[str, Any], output: str, init_from: str | None = None) -> str:
    """The ``seg-train`` command line that reproduces a run from its saved config; ``init_from``
    (the recipe's name for the source checkpoint) replaces the recorded one."""
    if init_from is not None:
        config["init_from"] = init_from
    parts = [f"seg-train --data {_data_arg(config['data'])}"]
    if config.get("split_file"):
        parts.append(f"--split {config['split_file']}")
    parts.append(f"-o {output}")
    for key, flag, default in _FLAGS:
        value = config.get(key)
        if value is None or value == default:
            continue
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
    """``seed 0: train 800 / val 100 / test 100`` from the split file the run trained on (the
    split's own seed; the run's ``--seed`` only draws initialisation and order)."""
    split = read_split(REPO / split_file)
    counts = " / ".join(f"{name} {len(split[name])}" for name in ("train", "val", "test") if name in split)
    seed = split.seed
    return counts if seed is None else f"seed {seed}: {counts}"


def _epoch_minutes(run: Path) -> str:
    history = run / "history.json"
    if not history.is_file():
        return ""
    rows = json.loads(history.read_text())
    total = sum(r.get("epoch_seconds", 0) for r in rows) / 60
    return f", {len(rows)} epochs in {total:.0f} min of training steps"


def _robustness_section(report: dict[str, Any] | None) -> list[str]:
    """The proxy table (another hospital's images, simulated from the test split) from a
    ``benchmarks/resize_policies.py`` report, when one is given."""
    if not report:
        return []
    return ["## Robustness proxies (the test images re-rendered, recoloured, blurred, compressed)", "",
            report["command"], "", *report["table"], "", *report.get("notes", []), ""]


def _demoted(markdown: str) -> list[str]:
    """A report's lines without its own title (the card's section heading replaces it)."""
    lines = markdown.strip().splitlines()
    return lines[1:] if lines and lines[0].startswith("# ") else lines


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def render(shipped: Path, run: Path | None = None, previous: dict[str, Any] | None = None,
           robustness: dict[str, Any] | None = None, latency: str | None = None, label: str | None = None) -> str:
    """The model card of checkpoint ``shipped``; ``run`` is the run folder it came from,
    ``previous`` the checkpoint it replaces, ``robustness`` a proxy table and ``latency`` the
    real-time report's Markdown (``benchmarks/realtime_budget.py``), ``label`` this model's name
    in those two reports; all optional."""
    model, info = load_checkpoint(shipped)
    tw, m = info.trained_with, dict(info.metrics)
    recipe = tw.get("recipe") or recipe_of(read_checkpoint_file(shipped), read_checkpoint_file, previous)
    cfg = dict(recipe.get("train", {}))
    val = m.get("val_metrics", {})
    split_file = cfg.get("split_file", "splits/kvasir-seg.json")
    params = sum(p.numel() for p in model.parameters()) / 1e6
    h, w = info.input_size
    mb = shipped.stat().st_size / 1e6
    selection = (f"best validation Dice over {cfg.get('epochs')} epochs (epoch {val.get('epoch')}, "
                 f"val Dice {val.get('dice', float('nan')):.3f})") if cfg else (
                 f"none by epoch: a weight average of the runs below (val Dice {val.get('dice', float('nan')):.3f} at "
                 "full resolution)")
    out = [f"# Model card: `{shipped.name}` (the default model that ships with attnseg)", "", "| | |", "| --- | --- |",
           (f"| Architecture | `{info.arch}` (reference layer names), `base_width={info.arch_kwargs.get('base_width')}`, "
           f"{info.in_channels} -> {info.arch_kwargs.get('output_ch', 1)} channels, {params:.2f} M parameters |"),
           (f"| Task | binary polyp segmentation (class `{info.classes[-1]}`), threshold {info.threshold} "
           "on the sigmoid |"),
           (f"| Input | {h} x {w} RGB, ImageNet mean/std; any image is resized to {h} x {w} "
            f"({info.resize_policy}, `{info.input_interpolation}` interpolation, as in training) and the "
            "mask resized back |"),
           f"| Storage | {tw.get('storage', 'fp32 weights')} in an attnseg checkpoint, {mb:.1f} MB |",
           "| Data | Kvasir-SEG (Jha et al., MMM 2020): 1000 colonoscopy images with polyp masks |",
           (f"| Split | `{split_file}`, {_split_counts(split_file)}. "
           "The test images were never used for training, model selection or INT8 calibration |"),
           f"| Selection | {selection} |", ""]
    counts = recipe_counts(recipe)
    heading = (f"CPU, {_precision_text(tw)} through oneDNN, {tw.get('threads')} threads"
               f"{_epoch_minutes(run) if run else ''}") if cfg else "CPU through oneDNN; each run's settings in its command"
    out += [f"## Training ({heading})", "",
            (f"The recipe, oldest step first: {_count(counts['runs'], 'training run')} and "
             f"{_count(counts['averages'], 'weight average')}. `--init-from` copies every tensor whose name and shape match (a U_Net fills an AttU_Net "
             "but its gates); `average_checkpoints` (`attnseg.train.soup`) averages fine-tunes of one model "
             "with the given weights (a model soup)."), "",
            "```", *recipe_steps(recipe, train_command), "```", ""]
    out += [("then `python tools/ship_model.py CHECKPOINT --data kvasir:../shared/data/kvasir-seg "
            "--split splits/kvasir-seg.json` stores the weights in fp16, scores them and writes this card."), "",
            ("AdamW, cosine schedule. Loss `bce-dice` (BCE + soft Dice) unless the command says `--loss "
            "bce-tversky` (BCE + focal Tversky weighing missed pixels 0.7 against false ones 0.3, plus a "
            "per-image presence term on the highest logit, so predicting nothing on a polyp image costs "
            "most). Augmentation `basic`: rotation, flips, crops, colour jitter; `domain-shift` "
            "(albumentations): also zoom in and out, aspect changes, gamma, hue and saturation, blur, "
            "resolution loss, JPEG quality 30-90 and specular highlights, aimed at other hospitals' "
            "endoscopes; `endoscope`: domain-shift plus black frames of any shape with vignetting, burnt-in "
            "overlay text, interlacing, over- and under-exposure and lens warps; `endoscope-colour`: also the "
            "white balance and saturation of other light sources and sensors. `--tile-crop-prob P` first cuts, "
            "with chance P, a window of the input size at the image's own resolution (the close-ups "
            "`TiledSegmenter` shows). `--ema D` validates and saves an exponential moving average of the "
            "weights. Width 16 and 256 x 256 keep an epoch near 100-150 s on an idle 2-core CPU."), "",
            f"## Metrics on the {int(m['count'])} held-out test images (full resolution, weights as shipped)", "",
            (f"`seg-eval src/attnseg/zoo/{shipped.name} --data kvasir:../shared/data/kvasir-seg "
            "--split splits/kvasir-seg.json`"), "",
            "| Dice | Jaccard | Sensitivity | Precision |", "| --- | --- | --- | --- |",
            f"| {m['dice']:.3f} | {m['jaccard']:.3f} | {m['sensitivity']:.3f} | {m['precision']:.3f} |", "",
            ("For scale: ResUNet++ reports 0.813 Dice on Kvasir-SEG after far longer training on a GPU. This is a "
            "demonstration model for the pipeline, not a clinical tool."), "",
            *([f"In the two sections below, this model is {label}; the other label is the release it replaces.", ""]
              if label and (robustness or latency) else []),
            *_robustness_section(robustness),
            *(["## Latency (real-time budget)", "", *_demoted(latency), ""] if latency else []),
            "## Licence of the data", "", LICENCE, ""]
    return "\n".join(out)
